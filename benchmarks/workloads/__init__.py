"""One module per workload; each defines KEY, NAME and `build(quick) -> harness.Workload`."""

from benchmarks.workloads import (
    w1_mlp_large,
    w2_mlp_small,
    w3_op_overhead,
    w4_scalar_mlp,
    w5_hessian,
    w6_train_digits,
    w7_vmap_grad,
    w8_conv1d,
    w9_conv2d,
    w10_gru,
)

ALL = [
    w1_mlp_large,
    w2_mlp_small,
    w3_op_overhead,
    w4_scalar_mlp,
    w5_hessian,
    w6_train_digits,
    w7_vmap_grad,
    w8_conv1d,
    w9_conv2d,
    w10_gru,
]
