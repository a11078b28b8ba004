"""The one table of workloads: name -> module with ``run(cfg) -> list[Row]``."""
from __future__ import annotations

from . import (wl_digits, wl_digits_adam, wl_distributed, wl_elementwise, wl_overhead,
               wl_rownorm, wl_scripts, wl_seed_mlp, wl_seq_conv, wl_symbolic, wl_threads)

WORKLOADS = {
    wl_overhead.NAME: wl_overhead,  # per-op eager overhead, µs/op
    wl_seed_mlp.NAME: wl_seed_mlp,  # seed two-layer network train step
    wl_elementwise.NAME: wl_elementwise,  # GELU, SiLU
    wl_rownorm.NAME: wl_rownorm,  # softmax, log_softmax, layer_norm, cross_entropy
    wl_symbolic.NAME: wl_symbolic,  # symbolic vs specialised: GELU, softmax, seed forward
    wl_threads.NAME: wl_threads,  # gemm + pool kernel rounds: BLAS vs kernel threads
    wl_digits.NAME: wl_digits,  # digits MLP epoch
    wl_digits_adam.NAME: wl_digits_adam,  # digits MLP epoch with Adam; fused Adam update
    wl_seq_conv.LSTM_NAME: wl_seq_conv.LSTMWorkload,  # 2-layer LSTM, variable lengths
    wl_seq_conv.CNN_NAME: wl_seq_conv.CNNWorkload,  # small CNN on 8x8 digits
    wl_distributed.NAME: wl_distributed,  # DDP under mpiexec: 1 vs 2 ranks, all_reduce
    wl_scripts.LM_NAME: wl_scripts.LMWorkload,  # word-level LSTM LM epoch, eager vs torch
    wl_scripts.CRF_NAME: wl_scripts.CRFWorkload,  # BiLSTM-CRF epoch, eager vs torch
    wl_scripts.DYN_NAME: wl_scripts.DynWorkload,  # dynamic-depth net step, eager vs torch
}
