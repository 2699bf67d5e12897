"""emotion2vec (Ma et al., 2024), the voc2vec paper's other feature baseline, through FunASR.

emotion2vec is published in FunASR's format, not as a transformers model, so it is an optional extra:
`pip install 'voc2vec[emotion2vec]'` (FunASR and ModelScope). `emotion2vec:<model id>` (e.g.
`emotion2vec:iic/emotion2vec_base`) takes the model's place; each clip's utterance-level embedding (FunASR's
`granularity="utterance"`, the mean of its frame features) is one 'layer' for the probe. Without FunASR,
`voc2vec.baselines.sources.check_feature_baseline` stops the run before any audio is decoded, naming the install.
"""

from __future__ import annotations

import numpy as np

from voc2vec.baselines.sources import check_funasr_installed


class Emotion2vecFeatures:
    def __init__(self, model_id: str, device="cpu"):
        self.model_id = model_id
        self.device = str(device)
        self.model = None

    def identity(self) -> dict:
        import funasr

        return {"kind": "emotion2vec", "model": self.model_id, "funasr": getattr(funasr, "__version__", None)}

    def layer_names(self) -> list[str]:
        return [f"emotion2vec {self.model_id} utterance embedding"]

    def load(self):
        check_funasr_installed()
        from funasr import AutoModel

        return AutoModel(model=self.model_id, device=self.device, disable_update=True)

    def compute(self, clips, lengths, rows) -> np.ndarray:
        if self.model is None:
            self.model = self.load()
        vectors = []
        for row in rows:
            audio = np.asarray(clips[int(row)]["input_values"], dtype=np.float32)
            result = self.model.generate(audio, granularity="utterance", extract_embedding=True, disable_pbar=True)
            vectors.append(np.asarray(result[0]["feats"], dtype=np.float32).reshape(-1))
        return np.stack(vectors)[:, None, :]
