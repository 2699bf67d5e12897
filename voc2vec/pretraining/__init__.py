"""Self-supervised pretraining pieces used by run_pretraining.py, one concept per module:

- `objectives`: one object per model family (wav2vec 2.0, HuBERT): build, losses, log row, export
- `stabilizers`: fairseq's CNN gradient scale and feature penalty for training from scratch
- `loss_normalization`: summed losses divided by the masked frames of the whole effective batch
- `masking`: span masks and sampled negatives (wav2vec 2.0 / HuBERT recipes)
- `kmeans_targets`: cached k-means frame targets from Kaldi MFCCs or a layer of the initial model
- `batching`: duration-bucketed, resumable batch sampler and the collator that crops (or pads) and masks
- `data`: where the audio comes from (corpus, folder, Parquet shards) and how a cell is decoded
- `checkpoints`: checkpoints written under a temporary name, the newest complete one found again
- `monitoring`: metrics.jsonl, collapse warnings, the non-finite loss and gradient stop
- `curves`: metrics.jsonl as one PNG with healthy ranges shaded (`python -m voc2vec.pretraining.curves RUN_DIR`)
- `flops`: training FLOPs of a wav2vec 2.0 / HuBERT config, for model FLOPs utilization (benchmarks/bench_gpu.py)
"""
