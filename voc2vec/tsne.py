"""The voc2vec paper's Figure 1: a 2-D map (t-SNE, or UMAP when installed) of each model's pooled clip embeddings on
a corpus, coloured by class, one panel per model.

    voc2vec tsne --model alkiskoudounas/voc2vec facebook/wav2vec2-base opensmile:eGeMAPSv02 \\
        --dataset_name donateacry --data_dir donateacry-corpus --output figure1.png
    python -m voc2vec.tsne --model configs/models/tiny-wav2vec2.json --dataset_name demo --output tsne.png

Embeddings come from the probing cache (`voc2vec.baselines.extractors.corpus_features`): a model probed on the
corpus before is not run again, and a figure made first leaves the features for probing. `--layer` picks the
hidden state (default: the last; 0 is the input to the first transformer layer); `--probe_pooling mean_std` adds
each dimension's std over frames. Each dimension is standardized over the corpus before the projection, as the
probes see it. The 2-D coordinates are written beside the PNG (`FILE.csv`: path, label, model, x, y).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from voc2vec.arguments import DataArguments, ModelArguments, parse_arguments, require
from voc2vec.errors import UserError, check_writable_dir, exit_on_user_error
from voc2vec.logs import configure_logging

logger = logging.getLogger("voc2vec.tsne")


@dataclass
class MapArguments:
    """Which models, which layer, which projection, where the figure goes."""

    model: list[str] = field(
        default=None,
        metadata={"help": "One panel per model: Hub id, local folder, config file (random weights) or feature baseline "
                  "(opensmile:eGeMAPSv02); NAME=SOURCE titles the panel NAME."},
    )
    output: str = field(default="tsne.png", metadata={"help": "The PNG to write (coordinates go to the same name .csv)."})
    layer: str = field(default="last", metadata={"help": "Hidden state to map: 'last' or an index (0: before the first layer)."})
    probe_pooling: Literal["mean", "mean_std"] = field(default="mean", metadata={"help": "Pooling over each clip's true frames."})
    projection: Literal["tsne", "umap"] = field(default="tsne", metadata={"help": "'tsne' (scikit-learn) or 'umap' (umap-learn, when installed)."})
    perplexity: float = field(default=30.0, metadata={"help": "t-SNE perplexity (capped at a third of the clips)."})
    max_clips: int | None = field(default=None, metadata={"help": "Map a random, class-stratified subset of this many clips."})
    seed: int = field(default=42, metadata={"help": "Seed of the projection, the subset, and random encoder weights."})
    batch_size: int = field(default=16, metadata={"help": "Clips per forward pass when embeddings are computed."})
    model_cache_dir: str | None = field(default=None, metadata={"help": "Where downloaded Hub models are stored."})

    def __post_init__(self):
        require(bool(self.model), "--model", "no model given", "pass one or more, e.g. --model configs/models/tiny-wav2vec2.json")
        require(self.layer == "last" or self.layer.lstrip("-").isdigit(), "--layer",
                f"must be 'last' or a layer index, got {self.layer!r}", "pass e.g. --layer 6")
        require(self.perplexity > 0, "--perplexity", f"must be positive, got {self.perplexity}", "pass e.g. 30")
        require(self.max_clips is None or self.max_clips >= 3, "--max_clips", f"must be at least 3, got {self.max_clips}", "pass e.g. 1000")
        require(Path(self.output).suffix.lower() == ".png", "--output", f"must be a .png file, got {self.output}", "pass e.g. figure1.png")


def panel_sources(models: list[str]) -> list[tuple[str, str]]:
    """`(title, source)` per `--model` item (`NAME=SOURCE` or just `SOURCE`)."""
    return [tuple(item.split("=", 1)) if "=" in item.split(":", 1)[0] else (item, item) for item in models]


def stratified_subset(targets: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    if size is None or size >= len(targets):
        return np.arange(len(targets))
    from sklearn.model_selection import train_test_split

    rows, _ = train_test_split(np.arange(len(targets)), train_size=size, stratify=targets, random_state=seed)
    return np.sort(rows)


def project(vectors: np.ndarray, args: MapArguments) -> np.ndarray:
    """`(clips, 2)` coordinates of standardized vectors."""
    vectors = (vectors - vectors.mean(axis=0)) / np.where(vectors.std(axis=0) > 1e-6, vectors.std(axis=0), 1.0)
    if args.projection == "umap":
        try:
            import umap
        except ImportError as error:
            raise UserError("UMAP needs the umap-learn package", where="--projection umap",
                            fix="pip install umap-learn, or use --projection tsne") from error
        return umap.UMAP(n_components=2, random_state=args.seed).fit_transform(vectors)
    from sklearn.manifold import TSNE

    perplexity = min(args.perplexity, (len(vectors) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=args.seed).fit_transform(vectors)


def model_embeddings(source: str, args: MapArguments, data_args, corpus) -> tuple[np.ndarray, str]:
    """`(clips, dim)` pooled embeddings of `source` at `--layer` (from the cache), and the layer's name."""
    import torch

    from voc2vec.baselines.extractors import corpus_features
    from voc2vec.baselines.heads import select_layers
    from voc2vec.models import check_model_source, probe_layer_index
    from voc2vec.tasks import decode_task_corpus

    model_args = ModelArguments(model_name_or_path=source, method="probe", probe_layer=args.layer,
                                probe_pooling=args.probe_pooling, model_cache_dir=args.model_cache_dir)
    config, feature_extractor = check_model_source(model_args)
    decoded = decode_task_corpus(corpus, feature_extractor.sampling_rate, data_args.corpus_cache_dir)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    features = corpus_features(model_args, data_args, decoded, feature_extractor, config, args.seed, args.batch_size, device)
    num_layers = features.values.shape[1]
    layer = 0 if num_layers == 1 else probe_layer_index(args.layer, num_layers)
    return select_layers(features.values, np.arange(len(decoded)), layer)[:, 0], features.layer_names[layer]


def plot_panels(panels: list[tuple[str, np.ndarray]], targets: np.ndarray, label_names: list[str], path: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    colours = [f"C{index}" for index in range(10)] if len(label_names) <= 10 else None
    figure = Figure(figsize=(4.2 * len(panels) + 1.6, 4.4))
    FigureCanvasAgg(figure)
    for index, (panel_title, coordinates) in enumerate(panels, start=1):
        axes = figure.add_subplot(1, len(panels), index)
        for class_id, name in enumerate(label_names):
            chosen = targets == class_id
            if chosen.any():
                colour = colours[class_id] if colours else None
                axes.scatter(coordinates[chosen, 0], coordinates[chosen, 1], s=8, alpha=0.75, label=name, color=colour)
        axes.set_title(panel_title, fontsize=9)
        axes.set_xticks([])
        axes.set_yticks([])
    figure.legend(*figure.axes[0].get_legend_handles_labels(), loc="center right", fontsize=8, markerscale=2)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout(rect=(0, 0, 1 - 1.5 / figure.get_figwidth(), 1))
    temporary = path.with_name(path.name + ".tmp.png")
    figure.savefig(temporary, dpi=130)
    temporary.replace(path)


@exit_on_user_error
def main(argv: list[str] | None = None, prog: str = "python -m voc2vec.tsne") -> int:
    args, data_args, _ = parse_arguments((MapArguments, DataArguments), sys.argv[1:] if argv is None else argv, prog=prog)
    configure_logging()
    from voc2vec.tasks import CLASSIFICATION, load_task_corpus

    output = Path(args.output)
    check_writable_dir(output.parent if str(output.parent) else Path("."), "--output")
    corpus = load_task_corpus(data_args)
    if corpus.task != CLASSIFICATION:
        raise UserError("a map is coloured by class, and this corpus has regression targets", where="--dataset_name",
                        fix="map a classification corpus (or give the csv loader a --label_column)")
    rows = stratified_subset(corpus.targets, args.max_clips, args.seed)
    panels, coordinate_rows = [], []
    paths = corpus.relative_paths()
    for title, source in panel_sources(args.model):
        vectors, layer_name = model_embeddings(source, args, data_args, corpus)
        logger.info("%s: projecting %d clips (%s, %d dimensions)", title, len(rows), layer_name, vectors.shape[1])
        coordinates = project(vectors[rows], args)
        panels.append((f"{title}\n{layer_name}", coordinates))
        coordinate_rows.append(pd.DataFrame({"path": [paths[row] for row in rows], "label": [corpus.label_names[t] for t in corpus.targets[rows]],
                                             "model": title, "x": coordinates[:, 0], "y": coordinates[:, 1]}))
    output.parent.mkdir(parents=True, exist_ok=True)
    plot_panels(panels, corpus.targets[rows], corpus.label_names, output,
                f"{corpus.name}: {len(rows)} clips, {'t-SNE' if args.projection == 'tsne' else 'UMAP'} of pooled embeddings")
    table_path = output.with_suffix(".csv")
    pd.concat(coordinate_rows, ignore_index=True).to_csv(table_path.with_name(table_path.name + ".tmp"), index=False)
    table_path.with_name(table_path.name + ".tmp").replace(table_path)
    print(f"Wrote {output} and {table_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
