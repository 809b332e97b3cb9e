"""The probe's options, shared by `hear run`, `hear probe` and `hear plan`."""

from __future__ import annotations

from typing import Annotated

import typer

from hear_runner.cli.options import flag

ProbeModeOption = Annotated[
    str,
    typer.Option(
        "--probe",
        "--mode",
        metavar="MODE",
        help="fast: heareval's grid trained at once as one batched network (GPU when present). "
        "faithful: heareval's protocol, network by network, on heareval's random stream "
        "(a seed gives heareval's numbers). linear: logistic regression.",
    ),
]
PrecisionOption = Annotated[
    str,
    typer.Option(
        "--precision",
        metavar="P",
        help="The fast probe's products: float32 (heareval's arithmetic) or bfloat16 (faster "
        "on CPUs with AVX512-BF16 or AMX and on GPUs; its scores are not float32's).",
    ),
]
ShuffleBatches = Annotated[
    bool,
    flag(
        "--shuffle-batches",
        "Draw a new batch order each epoch. Default: the rows in order every epoch, as "
        "heareval 2021.1.3's runner takes them.",
    ),
]
Seed = Annotated[int, typer.Option("--seed", metavar="N", help="Seed of the probe's training.")]
GridPoints = Annotated[
    int,
    typer.Option(
        "--grid-points",
        min=1,
        metavar="N",
        help="How many of heareval's shuffled grid points to try on the first fold (as "
        "heareval's --grid-points).",
    ),
]
Seeds = Annotated[
    int,
    typer.Option(
        "--seeds",
        min=1,
        metavar="N",
        help="Repeat the probe with N seeds (--seed, --seed+1, ...): mean and spread.",
    ),
]
