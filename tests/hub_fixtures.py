"""The Hugging Face Hub without a network, for the publishing tests: HfApi's methods record what they would send."""

from huggingface_hub import HfApi, constants

SECRET = "hf_TESTTOKEN_must_never_appear_0123456789"


def go_online(monkeypatch) -> None:
    """A logged-in user with the Hub switched on (the tests' environment sets HF_HUB_OFFLINE=1)."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", SECRET)


class FakeHub:
    """Records create_repo / create_commit / list_repo_files calls instead of sending them."""

    def __init__(self, present=()):
        self.repos, self.commits, self.present = [], [], list(present)

    def install(self, monkeypatch):
        monkeypatch.setattr(HfApi, "create_repo", lambda api, repo_id, **kw: self.repos.append((repo_id, kw)) or f"https://huggingface.co/{repo_id}")
        monkeypatch.setattr(HfApi, "create_commit", lambda api, repo_id, operations, **kw: self.commits.append((repo_id, list(operations), kw)))
        monkeypatch.setattr(HfApi, "list_repo_files", lambda api, repo_id, **kw: list(self.present))
        return self

    def uploaded(self) -> dict:
        """path_in_repo -> bytes, over every commit."""
        files = {}
        for _, operations, _ in self.commits:
            for operation in operations:
                content = operation.path_or_fileobj
                files[operation.path_in_repo] = content if isinstance(content, bytes) else open(content, "rb").read()
        return files
