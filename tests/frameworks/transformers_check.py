"""A tiny BERT (built from its config, nothing downloaded) fine-tuned for 6 steps on random tokens
with RunstreamCallback."""

import tempfile

import torch
from common import SYSTEM, URI, report
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainerCallback, TrainingArguments

from runstream.sdk.integrations.transformers import RunstreamCallback

torch.manual_seed(0)
config = BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=16, vocab_size=32)
model = BertForSequenceClassification(config)
ids = torch.randint(0, 32, (24, 6))
data = [{"input_ids": i, "attention_mask": torch.ones(6, dtype=torch.long), "labels": int(i[0] % 2)} for i in ids]


class Seen(TrainerCallback):  # type: ignore[misc]  # untyped here
    """What the Trainer itself logged, step by step."""

    def __init__(self) -> None:
        self.logs: list[tuple[int, dict[str, float]]] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.logs.append((state.global_step, dict(logs or {})))


seen, runstream_callback = Seen(), RunstreamCallback(experiment="transformers", tracking_uri=URI, **SYSTEM)
with tempfile.TemporaryDirectory() as out:
    args = TrainingArguments(
        output_dir=out,
        max_steps=6,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    Trainer(model=model, args=args, train_dataset=data, callbacks=[runstream_callback, seen]).train()
losses = {str(step): logs["loss"] for step, logs in seen.logs if "loss" in logs}
report(runstream_callback.run, losses=losses, logged_keys=sorted({k for _, logs in seen.logs for k in logs}))
