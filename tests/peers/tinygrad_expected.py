"""The tests of tinygrad's test_ops.py that do not pass on chainrule, each with its reason.

Every entry is a strict expected failure (tinygrad_plugin.py): one that starts passing fails
the run, so remove it then. The kind bounds how it may fail (see the plugin's _RAISES): a
LACKS or ERROR_TYPE test that fails on a value instead fails the run.
"""

LACKS = "chainrule lacks it"  # an op, an argument or a case a PyTorch user could reach for
ERROR_TYPE = "another exception type"  # chainrule refuses the bad input, naming it, with
# another exception type than PyTorch's and tinygrad's (chainrule.errors makes its op errors
# both Python's type and PyTorch's RuntimeError; these are the rest)
ACCEPTS = "chainrule accepts it"  # an input PyTorch refuses, which NumPy's rule accepts
NUMPY = "NumPy's rule"  # chainrule follows NumPy where it and PyTorch differ
TINYGRAD = "tinygrad only"  # tinygrad's own API or behaviour, not PyTorch's
TORCH = "PyTorch's own rounding"

_PROMOTE = "an int32 tensor with a float32 tensor promotes to float64 (PyTorch: float32)"

EXPECTED: dict[str, tuple[str, str]] = {
    # ---- chainrule lacks it
    "test_logical_not": (LACKS, "logical_not of a float tensor (~ takes bool or int)"),
    "test_scatter_mul": (LACKS, "scatter(reduce='multiply')"),
    # ---- another exception type for a bad input
    "test_cat": (ERROR_TYPE, "concatenating 0-d tensors is a ValueError (PyTorch: IndexError)"),
    "test_pad": (ERROR_TYPE, "an unknown pad mode is a ValueError (PyTorch: NotImplementedError)"),
    "test_slice_fancy_indexing_errors": (
        ERROR_TYPE,
        "a float index tensor is a TypeError naming it (PyTorch: IndexError)",
    ),
    # ---- chainrule accepts an input PyTorch refuses
    "test_roll": (
        ACCEPTS,
        "roll(1, dims=(0, 1)) shifts both axes by 1, as NumPy (PyTorch refuses)",
    ),
    "test_scatter": (
        ACCEPTS,
        "scatter of a float16 tensor with a float32 src promotes, as NumPy (PyTorch refuses "
        "mixed dtypes)",
    ),
    # ---- NumPy's rule where it and PyTorch differ
    "test_div_rounding_mode": (NUMPY, _PROMOTE),
    "test_maximum": (NUMPY, _PROMOTE),
    "test_minimum": (NUMPY, _PROMOTE),
    "test_mod": (NUMPY, _PROMOTE),
    "test_slice_fancy_indexing_dim_collapse_int": (
        NUMPY,
        "an int among index tensors counts as an advanced index (NumPy's rule: PyTorch's "
        "result has the advanced axes elsewhere)",
    ),
    # ---- tinygrad's own API or behaviour
    "test_negative_dims": (TINYGRAD, "Tensor.uniform, scaled_uniform and glorot_uniform"),
    "test_negative_dims_kaiming": (TINYGRAD, "Tensor.kaiming_uniform and kaiming_normal"),
    "test_quick_gelu": (TINYGRAD, "quick_gelu, x sigmoid(1.702 x)"),
    "test_quick_gelu_extreme": (TINYGRAD, "quick_gelu, x sigmoid(1.702 x)"),
    "test_sum_dtype_arg": (
        TINYGRAD,
        "sum(dtype='') is tinygrad's AttributeError (NumPy: TypeError)",
    ),
    "test_prod_dtype_arg": (
        TINYGRAD,
        "prod(dtype='') is tinygrad's AttributeError (NumPy: TypeError)",
    ),
    "test_isinf": (TINYGRAD, "isinf(detect_positive=, detect_negative=)"),
    "test_pad_circular_mode": (
        TINYGRAD,
        "tinygrad refuses negative circular padding (NotImplementedError); PyTorch and "
        "chainrule crop first",
    ),
    "test_scatter_no_reduce_tensor_src": (
        TINYGRAD,
        "tinygrad's TypeError for a Tensor src with reduce=",
    ),
    "test_sigmoid_alt_extreme": (
        TINYGRAD,
        "exp(300) / (1 + exp(300)) in float32 is inf / inf = NaN (in PyTorch too); tinygrad's "
        "graph rewrite avoids it",
    ),
    # ---- PyTorch's own rounding
    "TestOpsUint8.test_interpolate_bilinear": (
        TORCH,
        "uint8 bilinear: chainrule rounds the exact weighted mean; PyTorch's fixed-point uint8 "
        "kernel differs by 1 in some pixels",
    ),
}

SLOW: dict[str, str] = {}  # tests left out of the suite's run as too slow, with the reason
