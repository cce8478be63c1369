"""A 2-layer MLP trained for 8 epochs of 8 steps with RunstreamLogger (nested hyperparameters)."""

import torch
from common import SYSTEM, URI, report
from lightning import LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset

from runstream.sdk.integrations.lightning import RunstreamLogger

torch.manual_seed(0)


class MLP(LightningModule):  # type: ignore[misc]  # untyped here
    def __init__(self, hidden: int = 8, optim: dict[str, object] | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
        self.losses: list[float] = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        self.losses.append(loss.item())
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.optim["lr"])


data = DataLoader(TensorDataset(torch.randn(64, 4), torch.randn(64, 1)), batch_size=8)
logger = RunstreamLogger(experiment="lightning", run_name="mlp", tracking_uri=URI, **SYSTEM)
model = MLP(optim={"name": "sgd", "lr": 0.05})
trainer = Trainer(
    max_epochs=8,
    logger=logger,
    log_every_n_steps=1,
    accelerator="cpu",
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
)
trainer.fit(model, data)
report(logger.experiment, losses=model.losses, name=logger.name, version=logger.version)
