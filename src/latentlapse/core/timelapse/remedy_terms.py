"""How a remedy names a training setting: by its command-line flag for a run of ``latentlapse
train``, in the training loop's own terms for a run filmed by ``Timelapse``, whose user has no
flags. Each remedy is written once, with these phrases in it."""

from __future__ import annotations

from dataclasses import dataclass

# phrase: (command line, training loop); "{}" takes a value
PHRASES = {
    "epochs": ("--epochs {}", "training for {} epochs"),
    "all epochs": ("all --epochs", "all its epochs"),
    "patience": ("--patience {}", "early stopping after {} epochs without gain"),
    "weight decay": ("--weight_decay", "the optimizer's weight decay"),
    "learning rate": ("--lr", "the learning rate"),
    "oversampling": ("--oversample_target", "the oversampling of rare classes"),
    "oversample_target": ("--oversample_target {}", "oversample_target {} in the run's config"),
    "focal gamma": ("--focal_gamma", "the gamma of a focal loss"),
    "class weights": ("the loss weights (--alpha {}) favour the rare classes: use --alpha none to call them less often",
                      "where the loss weights the rare classes up, weigh them less to call them less often"),
    "same seed": ("the same command (the same --seed and --threads train the same weights)",
                  "your loop with the same seeds"),
    "probabilities": (" (the p_ columns of predict)", ""),
}


@dataclass(frozen=True)
class Terms:
    """The phrases of one kind of run: ``library`` for a run written by ``Timelapse``."""

    library: bool = False

    def __call__(self, phrase: str, value: object = "") -> str:
        return PHRASES[phrase][self.library].format(value)


COMMAND_LINE = Terms(library=False)
