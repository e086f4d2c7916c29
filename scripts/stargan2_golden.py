"""Write tests/fixtures/stargan2_official/golden.pt from the official StarGAN v2 code.

    python scripts/stargan2_golden.py PATH/TO/clovaai/stargan-v2

Runs the reference's networks (``core/model.py``) and its loss functions (``compute_d_loss``,
``compute_g_loss`` and helpers, read out of ``core/solver.py`` so that its data and metric imports,
which need torchvision, are not loaded) at 64x64, 3 domains, widths up to 256, with the weights of
``tests/models/gan/_stargan2_golden.py:fill``; stores the inputs, outputs, loss terms and the
per-tensor squared gradient norms. Nothing of the reference is copied into attnlab: it is run.
Everything runs in float64: in float32 the instance norms' scale gradients (sums of cancelling
products) depend on the summation order of the CPU's convolution kernels, by 1.7e-4 relative
between two machines, one thread each.
"""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.models.gan._stargan2_golden import (  # noqa: E402
    IMG_SIZE,
    LAMBDAS,
    LATENT_DIM,
    MAX_CONV_DIM,
    NUM_DOMAINS,
    STYLE_DIM,
    fill,
    inputs,
)


class Munch(dict):
    """Stand-in for the ``munch`` package: a dict with attribute access."""

    __getattr__ = dict.__getitem__


def official(repo: Path) -> tuple[types.ModuleType, dict]:
    sys.modules["munch"] = types.SimpleNamespace(Munch=Munch)  # type: ignore[assignment]
    sys.modules["core.wing"] = types.SimpleNamespace(FAN=None)  # type: ignore[assignment]  # w_hpf = 0
    sys.path.insert(0, str(repo))
    import core.model as model  # the reference's networks

    solver = ast.parse((repo / "core" / "solver.py").read_text())
    wanted = {"compute_d_loss", "compute_g_loss", "adv_loss", "r1_reg"}
    funcs = [node for node in solver.body if isinstance(node, ast.FunctionDef) and node.name in wanted]
    namespace = {"torch": torch, "F": F, "Munch": Munch}
    exec(compile(ast.Module(body=funcs, type_ignores=[]), "solver.py", "exec"), namespace)
    return model, namespace


def grad_norms(module: torch.nn.Module) -> dict[str, float]:
    return {
        n: float(p.grad.double().square().sum()) for n, p in module.named_parameters() if p.grad is not None
    }


def main(repo: Path) -> None:
    model, solver = official(repo)
    nets = Munch(
        generator=model.Generator(IMG_SIZE, STYLE_DIM, max_conv_dim=MAX_CONV_DIM, w_hpf=0),
        mapping_network=model.MappingNetwork(LATENT_DIM, STYLE_DIM, NUM_DOMAINS),
        style_encoder=model.StyleEncoder(IMG_SIZE, STYLE_DIM, NUM_DOMAINS, max_conv_dim=MAX_CONV_DIM),
        discriminator=model.Discriminator(IMG_SIZE, NUM_DOMAINS, max_conv_dim=MAX_CONV_DIM),
    )
    for i, name in enumerate(nets):
        nets[name].load_state_dict(fill(nets[name].state_dict(), seed=i))
        nets[name].double()
    args = Munch(LAMBDAS, w_hpf=0)
    x = {k: v.double() if v.is_floating_point() else v for k, v in inputs().items()}
    golden: dict = {"inputs": {k: v.clone() for k, v in x.items()}}
    with torch.no_grad():
        s = nets.mapping_network(x["z"], x["y_trg"])
        golden["outputs"] = {
            "style": s,
            "fake": nets.generator(x["x"], s),
            "style_enc": nets.style_encoder(x["x"], x["y_org"]),
            "d_logits": nets.discriminator(x["x"], x["y_org"]),
        }
    for mode in ("latent", "reference"):
        by = {"z_trg": x["z"]} if mode == "latent" else {"x_ref": x["x_ref"]}
        for net in nets.values():
            net.zero_grad()
        loss, terms = solver["compute_d_loss"](nets, args, x["x"].clone(), x["y_org"], x["y_trg"], **by)
        loss.backward()
        golden[f"d_{mode}"] = {
            "loss": float(loss),
            "terms": dict(terms),
            "grads": grad_norms(nets.discriminator),
        }
        pair = {"z_trgs": [x["z"], x["z2"]]} if mode == "latent" else {"x_refs": [x["x_ref"], x["x_ref2"]]}
        for net in nets.values():
            net.zero_grad()
        loss, terms = solver["compute_g_loss"](nets, args, x["x"].clone(), x["y_org"], x["y_trg"], **pair)
        loss.backward()
        golden[f"g_{mode}"] = {
            "loss": float(loss),
            "terms": dict(terms),
            "grads": {n: grad_norms(nets[n]) for n in ("generator", "mapping_network", "style_encoder")},
        }
    out = ROOT / "tests" / "fixtures" / "stargan2_official" / "golden.pt"
    torch.save(golden, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
