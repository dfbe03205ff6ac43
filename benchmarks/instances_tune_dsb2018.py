"""Re-tune a spatial-embedding model's clustering thresholds on the DSB2018 validation images.

The same search as at the end of ``clusterseg train instances``
(:func:`clusterseg.training.instances.tune_model_clustering`: the general
thresholds, then one set per imaging modality), on the 51 validation images of
``benchmarks/instances_train_dsb2018.py`` (the fixed test split is never seen).
Use it on a model trained before the per-modality search existed::

    python benchmarks/instances_tune_dsb2018.py --model dsb2018-nuclei --out runs/dsb2018_retuned.pt
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from clusterseg.datasets import dsb2018, split_by_name
from clusterseg.instances.api import load_instance_model
from clusterseg.training.instances import prepare_samples, tune_model_clustering


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model name or checkpoint path")
    parser.add_argument("--out", required=True, help="where to write the re-tuned model (must not exist)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = dsb2018(split="train")
    _, held = split_by_name(data.names, 0.1, salt="val")
    val = prepare_samples([data[i] for i in held])
    model = load_instance_model(args.model)
    model = type(model).from_checkpoint(model.checkpoint())  # a copy: the cached model stays as it is
    before = dataclasses.asdict(model.clustering)
    tune_model_clustering(model, val)
    model.metadata["retuned_from"] = {"model": str(args.model), "clustering": before}
    print(f"general: {model.clustering} (val Acc@0.5 {model.metadata['val_dsb50_tuned']:.4f})")
    for modality, params in model.modality_clustering.items():
        print(f"{modality}: {params} (val Acc@0.5 {model.metadata[f'val_dsb50_tuned_{modality}']:.4f})")
    print(f"written: {model.save(args.out)}")


if __name__ == "__main__":
    main()
