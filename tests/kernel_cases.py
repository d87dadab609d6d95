"""Arguments for the optimizer-update kernels, shared by the CPU kernel tests and the CUDA simulator tests.

{case: (op name, number of state arrays, arguments after the arrays)}.
"""

OPTIMIZER_CASES = {
    "sgd": ("sgd_step", 1, (0.1, 0.0, False, 0.01)),
    "momentum": ("sgd_step", 1, (0.1, 0.9, False, 0.01)),
    "nesterov": ("sgd_step", 1, (0.05, 0.8, True, 0.0)),
    "adagrad": ("adagrad_step", 1, (0.1, 1e-10, 0.01)),
    "rmsprop": ("rmsprop_step", 1, (0.01, 0.9, 1e-8, 0.01)),
    "adam": ("adam_step", 2, (0.01, 0.9, 0.999, 1e-8, 7, 0.01, False)),
    "adamw": ("adam_step", 2, (0.01, 0.9, 0.999, 1e-8, 7, 0.05, True)),
}
