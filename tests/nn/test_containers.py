"""ModuleDict, ParameterList, forward hooks, requires_grad_ and nn.utils, as PyTorch's."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn


def test_module_dict_registers_and_names_like_torch() -> None:
    torch = pytest.importorskip("torch")
    ours = nn.ModuleDict({"enc": nn.Linear(3, 4), "dec": nn.Linear(4, 3)})
    ours["extra"] = nn.Linear(2, 2)
    del ours["extra"]
    theirs = torch.nn.ModuleDict({"enc": torch.nn.Linear(3, 4), "dec": torch.nn.Linear(4, 3)})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert list(ours) == ["enc", "dec"] and "enc" in ours and len(ours) == 2


def test_parameter_list_registers_every_parameter() -> None:
    ps = nn.ParameterList([np.zeros(2)]).append(nn.Parameter(np.ones((2, 2))))
    assert [n for n, _ in ps.named_parameters()] == ["0", "1"]
    assert ps.num_parameters() == 6 and ps[-1].shape == (2, 2)


def test_forward_hooks_see_and_replace_inputs_and_outputs() -> None:
    layer = nn.Linear(2, 2)
    calls = []
    pre = layer.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    post = layer.register_forward_hook(lambda m, args, out: calls.append(args[0].tolist()))
    out = layer(cr.ones(1, 2))
    assert calls == [[[0.0, 0.0]]]
    np.testing.assert_allclose(out.data, layer.bias.data[None])  # the input was zeroed
    pre.remove()
    post.remove()
    post.remove()  # twice is harmless
    layer(cr.ones(1, 2))
    assert len(calls) == 1
    layer.register_forward_hook(lambda m, args, out: out * 2)
    np.testing.assert_allclose(layer(cr.zeros(1, 2)).data, 2 * layer.bias.data[None])


def test_requires_grad_freezes_a_part_of_a_model() -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
    model[0].requires_grad_(False)
    model(cr.ones(2, 3)).sum().backward()
    assert model[0].weight.grad is None and model[1].weight.grad is not None


def test_parameters_to_vector_and_back() -> None:
    torch = pytest.importorskip("torch")
    model = nn.Linear(3, 2)
    v = nn.utils.parameters_to_vector(model.parameters())
    tv = torch.nn.utils.parameters_to_vector([torch.tensor(p.data) for p in model.parameters()])
    np.testing.assert_array_equal(v.data, tv.numpy())
    cr.sum(v * v).backward()  # differentiable: d|v|^2 = 2 v for every parameter
    np.testing.assert_allclose(model.weight.grad.data, 2 * model.weight.data)
    nn.utils.vector_to_parameters(np.arange(8.0), model.parameters())
    assert model.bias.tolist() == [6.0, 7.0]
    with pytest.raises(ValueError, match="need a vector of 8 values, got shape \\(7,\\)"):
        nn.utils.vector_to_parameters(np.arange(7.0), model.parameters())
