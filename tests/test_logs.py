"""The entry points' console logging: a second main() in one process, and handlers that are not ours."""
import io
import logging

from voc2vec.logs import configure_logging


def bare_root(monkeypatch) -> logging.Logger:
    """The root logger with no handler, as in a plain script; pytest's own come back after the test.

    Called inside the test: pytest adds its capture handler to the root logger after the fixtures are set up.
    """
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    return root


def test_a_second_call_logs_to_the_current_stream_not_a_closed_one(monkeypatch):
    root = bare_root(monkeypatch)
    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    configure_logging()
    logging.getLogger("test_logs").info("first run")
    first.close()  # what pytest's capture does to the stream between tests
    second = io.StringIO()
    monkeypatch.setattr("sys.stderr", second)
    configure_logging(fmt="%(levelname)s %(message)s")
    logging.getLogger("test_logs").info("second run")
    assert second.getvalue() == "INFO second run\n"
    assert len(root.handlers) == 1


def test_an_applications_console_handler_is_kept_and_nothing_is_printed_twice(monkeypatch):
    root = bare_root(monkeypatch)
    console = io.StringIO()
    monkeypatch.setattr("sys.stderr", console)
    root.addHandler(logging.StreamHandler(console))  # theirs, on the same stderr
    configure_logging(logging.INFO)
    logging.getLogger("test_logs").info("hello")
    assert console.getvalue() == "hello\n"


def test_a_capture_handler_is_kept_and_the_log_still_reaches_stderr(monkeypatch):
    root = bare_root(monkeypatch)
    captured = io.StringIO()  # like pytest's caplog or a log file: the user sees none of it
    root.addHandler(logging.StreamHandler(captured))
    console = io.StringIO()
    monkeypatch.setattr("sys.stderr", console)
    configure_logging(logging.INFO, fmt="%(message)s")
    logging.getLogger("test_logs").info("hello")
    assert captured.getvalue() == "hello\n" and console.getvalue() == "hello\n"


def test_the_level_applies_even_when_another_handler_prints(monkeypatch):
    root = bare_root(monkeypatch)
    root.addHandler(logging.NullHandler())
    configure_logging(logging.WARNING)
    assert not logging.getLogger("test_logs").isEnabledFor(logging.INFO)
    configure_logging(logging.INFO)
    assert logging.getLogger("test_logs").isEnabledFor(logging.INFO)
