"""Baselines that take the fine-tuned model's place on the same splits, scored and reported the same way.

- `opensmile:<set>` (eGeMAPSv02, ComParE_2016, ...): openSMILE functionals of every clip (`opensmile_features`).
- `emotion2vec:<model id>`: utterance embeddings of FunASR's emotion2vec (`emotion2vec`; optional extra).
- `--method probe`: the frozen hidden layers of any transformers audio encoder, pooled over each clip's true frames.

Features are computed once per (source, revision, corpus, crop, pooling) into an on-disk cache (`feature_cache`),
so k folds x several heads x several layers cost one pass over the corpus. `probe` (in `probing`) then trains a
small head per fold (`heads`: a learned softmax-weighted sum of layers or one layer, then linear, MLP or
logistic regression) with early stopping on the protocol's validation split, and returns what `finetune` returns:
`voc2vec.evaluation.run_split` writes the same files for every method.
"""


def __getattr__(name: str):
    # `probe` pulls in torch and the encoders; `voc2vec.models` imports `sources` from this package at import time.
    if name == "probe":
        from voc2vec.baselines.probing import probe

        return probe
    raise AttributeError(name)
