//! The WGSL kernels, one family per file under `shaders/`, and their entry points.

/// One compute entry point. Its binding slots are listed at the entry in WGSL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Gemm,
    GemmTiled,
    GemmWide,
    /// The tiled GEMMs finishing an Elman step in their store, A read through C (A_FROM_C).
    GemmTiledStep,
    GemmWideStep,
    /// The wide GEMM reading 4 values a load (`gemm_wide_quads`, f32 operands); the Step
    /// variant reads A through C (A_FROM_C) and only B in quads.
    GemmWideQuads,
    GemmWideQuadsStep,
    /// The 64x64 tiled GEMM reading 4 values a load (`gemm_tiled_quads`), and its step.
    GemmTiledQuads,
    GemmTiledQuadsStep,
    /// The 128x64 tiled GEMM reading 4 values a load (`gemm_tall_quads`), and its step.
    GemmTallQuads,
    GemmTallQuadsStep,
    GemmSubgroup,
    /// The subgroup GEMM reading f16 operand pairs as one word (PACKED_PAIRS).
    GemmSubgroupPairs,
    /// The subgroup GEMM finishing an Elman step in its store, A read through C (A_FROM_C).
    GemmSubgroupStep,
    /// The subgroup GEMM reading B through a uniform-buffer window.
    GemmSubgroupWindow,
    /// The window GEMM reading f16 operand pairs as one word (PACKED_PAIRS).
    GemmSubgroupWindowPairs,
    /// The subgroup GEMM reading A through a uniform-buffer window.
    GemmSubgroupWindowA,
    GemmSubgroupWindowAPairs,
    /// The window GEMM loading 4 k values a load (`shaders/gemm_quads.wgsl`): B
    /// through the window; with TRANSPOSED, A through the window; with PACKED_PAIRS, f16.
    GemmWindowQuads,
    GemmWindowQuadsPairs,
    GemmWindowQuadsA,
    GemmWindowQuadsAPairs,
    /// The window quads GEMM (B's windows) finishing an Elman step in its store, A read
    /// through C (A_FROM_C); f32 only.
    GemmWindowQuadsStep,
    /// The window quads GEMM with A's windows (TRANSPOSED) finishing an Elman step in its
    /// store, A read through a window of a copy its previous step wrote (STEP_COPY); f32.
    GemmWindowQuadsAStep,
    /// `gemm_window_quads_sweep`: the fused Elman steps of a whole chunk in one dispatch (a
    /// workgroup per 32 sequences looping over the steps; W_hh in one window; f32).
    GemmWindowQuadsSweep,
    /// The sweep with W_hh read from its storage buffer (it does not fit one window).
    GemmWindowQuadsSweepStorage,
    /// The two sweeps compiled with 8-byte storage words ([`Kernel::long_words`]: W_hh from
    /// storage and the states through C's words as two 64-bit integers a 16-byte word).
    GemmWindowLongsSweep,
    GemmWindowLongsSweepStorage,
    /// `gated_quads_sweep_forward` / `_backward` for an LSTM: its steps of a whole chunk in
    /// one dispatch (a workgroup per 32 sequences looping over the steps, each step's
    /// product then its cell math; f32, W_hh from storage).
    LstmQuadsSweepForward,
    LstmQuadsSweepBackward,
    /// The two compiled with 8-byte storage words ([`Kernel::long_words`]).
    LstmLongsSweepForward,
    LstmLongsSweepBackward,
    /// The four for a GRU (GATED_LSTM off).
    GruQuadsSweepForward,
    GruQuadsSweepBackward,
    GruLongsSweepForward,
    GruLongsSweepBackward,
    /// The outer-product GEMM of `shaders/gemm_quads.wgsl` (A along m, B along n: dYᵀ·X);
    /// with PACKED_PAIRS, f16.
    GemmOuterQuads,
    GemmOuterQuadsPairs,
    /// The outer-product GEMM with A f16 and B f32 (X_PAIRS), or A f32 and B f16 (Y_PAIRS).
    GemmOuterQuadsXPairs,
    GemmOuterQuadsYPairs,
    /// `gemm_outer_quads` for x·W's layout: A read along k (A_ROWS; f32).
    GemmOuterQuadsRows,
    /// GemmOuterQuadsRows with an f16 B (Y_PAIRS: f16 weights under --precision f16).
    GemmOuterQuadsRowsYPairs,
    /// GemmOuterQuads and GemmOuterQuadsRows compiled with 8-byte storage words
    /// ([`Kernel::long_words`]; f32 operands, adapters with 64-bit integers).
    GemmOuterLongs,
    GemmOuterLongsRows,
    /// The outer-product GEMM where C has at most 8 columns (`gemm_outer_narrow`: a lane owns
    /// 4 rows and every column; f32), with 4- and 8-byte storage words.
    GemmOuterNarrow,
    GemmOuterNarrowLongs,
    /// `gemm_outer_quads` where M is at most 20 (ROW_QUADS 5: the tile's first 20 rows get
    /// products), with 4- and 8-byte storage words (f32).
    GemmOuterQuadsShort,
    GemmOuterLongsShort,
    GemmSplitReduce,
    EmbedGather,
    /// EmbedGather with 4 consecutive d per invocation (f32 table and x, D and offset
    /// multiples of 4).
    EmbedGatherQuads,
    /// EmbedGatherQuads copying 8-byte words ([`Kernel::long_words`]).
    EmbedGatherLongs,
    EmbedGrad,
    /// EmbedGrad with 4 consecutive d per invocation (f32 grads, D and offset multiples of 4).
    EmbedGradQuads,
    /// EmbedGradQuads reading dx in 8-byte words ([`Kernel::long_words`]).
    EmbedGradLongs,
    RnnStepForward,
    RnnStepBackward,
    RnnChunkForward,
    RnnChunkBackward,
    RnnStepCombineForward,
    RnnStepCombineBackward,
    /// The combine kernels 4 elements an invocation (B·H a multiple of 4).
    RnnStepCombineForwardQuads,
    RnnStepCombineBackwardQuads,
    LstmStepForward,
    LstmStepBackward,
    GruStepForward,
    GruStepBackward,
    LstmStepCombineForward,
    LstmStepCombineBackward,
    GruStepCombineForward,
    GruStepCombineBackward,
    LstmChunkForward,
    LstmChunkBackward,
    GruChunkForward,
    GruChunkBackward,
    PoolForward,
    PoolBackward,
    /// pool_backward for last/max pooling: dz onto the step `arg` names (dh_out zeroed first).
    PoolBackwardScatter,
    /// pool_backward for mean pooling, 4 elements an invocation (H a multiple of 4).
    PoolBackwardMeanQuads,
    ReverseRows,
    UnitOutput,
    UnitOutputGrad,
    LossRows,
    LossSum,
    ColumnSum,
    ColumnPartials,
    /// `column_sum_quads`: column_sum or column_partials 4 columns an invocation (software
    /// adapters, N a multiple of 4); the Longs variant with 8-byte storage words.
    ColumnSumQuads,
    ColumnSumLongs,
    SquarePartials,
    NormFinalize,
    Sgd,
    Adam,
    /// The three compiled with 8-byte storage words ([`Kernel::long_words`]), for software
    /// adapters with 64-bit integers ([`crate::gpu::AdapterInfo::long_storage_words`]).
    SquarePartialsLongs,
    SgdLongs,
    AdamLongs,
    FmaPeak,
    Cast,
    /// `transpose_elements`: a [rows, cols] block into [cols, rows].
    Transpose,
    /// `transpose_quads`: the same by 4x4 blocks (f32, rows, cols and offset multiples of 4);
    /// the Longs variant with 8-byte storage words.
    TransposeQuads,
    TransposeLongs,
}

/// WGSL shared by several kernel files, spliced in where a file has the line
/// `// @include NAME` ([`typed_source`]); not modules of their own.
pub const SHADER_PARTS: &[(&str, &str)] = &[
    (
        "gemm_common.wgsl",
        include_str!("../../shaders/gemm_common.wgsl"),
    ),
    (
        "gated_cell_math.wgsl",
        include_str!("../../shaders/gated_cell_math.wgsl"),
    ),
];

/// The line that splices part `NAME` into a kernel file: `// @include NAME`.
const INCLUDE: &str = "// @include ";

/// `source` with each `// @include NAME` line replaced by part NAME of [`SHADER_PARTS`].
fn with_parts(source: &str) -> Result<String, String> {
    let mut out = String::with_capacity(source.len());
    for line in source.lines() {
        match line.trim().strip_prefix(INCLUDE) {
            Some(name) => {
                let (_, part) = SHADER_PARTS
                    .iter()
                    .find(|(n, _)| *n == name.trim())
                    .ok_or_else(|| format!("`{line}`: no such part in gpu::SHADER_PARTS"))?;
                out.push_str(part);
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

/// Every WGSL kernel file, for validation and for the kernel registry.
pub const SHADER_FILES: &[(&str, &str)] = &[
    ("gemm.wgsl", include_str!("../../shaders/gemm.wgsl")),
    (
        "gemm_subgroup.wgsl",
        include_str!("../../shaders/gemm_subgroup.wgsl"),
    ),
    (
        "gemm_quads.wgsl",
        include_str!("../../shaders/gemm_quads.wgsl"),
    ),
    ("embed.wgsl", include_str!("../../shaders/embed.wgsl")),
    ("rnn_cell.wgsl", include_str!("../../shaders/rnn_cell.wgsl")),
    (
        "gated_cell.wgsl",
        include_str!("../../shaders/gated_cell.wgsl"),
    ),
    ("pool.wgsl", include_str!("../../shaders/pool.wgsl")),
    ("layer_io.wgsl", include_str!("../../shaders/layer_io.wgsl")),
    ("loss.wgsl", include_str!("../../shaders/loss.wgsl")),
    ("reduce.wgsl", include_str!("../../shaders/reduce.wgsl")),
    ("optim.wgsl", include_str!("../../shaders/optim.wgsl")),
    ("ceiling.wgsl", include_str!("../../shaders/ceiling.wgsl")),
    ("convert.wgsl", include_str!("../../shaders/convert.wgsl")),
];

impl Kernel {
    pub fn file(self) -> &'static str {
        match self {
            Kernel::Gemm
            | Kernel::GemmTiled
            | Kernel::GemmWide
            | Kernel::GemmTiledStep
            | Kernel::GemmWideStep
            | Kernel::GemmWideQuads
            | Kernel::GemmWideQuadsStep
            | Kernel::GemmTiledQuads
            | Kernel::GemmTiledQuadsStep
            | Kernel::GemmTallQuads
            | Kernel::GemmTallQuadsStep
            | Kernel::GemmSplitReduce => "gemm.wgsl",
            Kernel::GemmSubgroup
            | Kernel::GemmSubgroupPairs
            | Kernel::GemmSubgroupStep
            | Kernel::GemmSubgroupWindow
            | Kernel::GemmSubgroupWindowPairs
            | Kernel::GemmSubgroupWindowA
            | Kernel::GemmSubgroupWindowAPairs => "gemm_subgroup.wgsl",
            Kernel::GemmWindowQuads
            | Kernel::GemmWindowQuadsPairs
            | Kernel::GemmWindowQuadsA
            | Kernel::GemmWindowQuadsAPairs
            | Kernel::GemmWindowQuadsStep
            | Kernel::GemmWindowQuadsSweep
            | Kernel::GemmWindowQuadsSweepStorage
            | Kernel::GemmWindowLongsSweep
            | Kernel::GemmWindowLongsSweepStorage
            | Kernel::LstmQuadsSweepForward
            | Kernel::LstmQuadsSweepBackward
            | Kernel::LstmLongsSweepForward
            | Kernel::LstmLongsSweepBackward
            | Kernel::GruQuadsSweepForward
            | Kernel::GruQuadsSweepBackward
            | Kernel::GruLongsSweepForward
            | Kernel::GruLongsSweepBackward
            | Kernel::GemmWindowQuadsAStep
            | Kernel::GemmOuterQuads
            | Kernel::GemmOuterQuadsPairs
            | Kernel::GemmOuterQuadsXPairs
            | Kernel::GemmOuterQuadsYPairs
            | Kernel::GemmOuterQuadsRows
            | Kernel::GemmOuterQuadsRowsYPairs
            | Kernel::GemmOuterLongs
            | Kernel::GemmOuterLongsRows
            | Kernel::GemmOuterNarrow
            | Kernel::GemmOuterNarrowLongs
            | Kernel::GemmOuterQuadsShort
            | Kernel::GemmOuterLongsShort => "gemm_quads.wgsl",
            Kernel::EmbedGather
            | Kernel::EmbedGatherQuads
            | Kernel::EmbedGatherLongs
            | Kernel::EmbedGrad
            | Kernel::EmbedGradQuads
            | Kernel::EmbedGradLongs => "embed.wgsl",
            Kernel::RnnStepForward
            | Kernel::RnnStepBackward
            | Kernel::RnnChunkForward
            | Kernel::RnnChunkBackward
            | Kernel::RnnStepCombineForward
            | Kernel::RnnStepCombineBackward
            | Kernel::RnnStepCombineForwardQuads
            | Kernel::RnnStepCombineBackwardQuads => "rnn_cell.wgsl",
            Kernel::LstmStepForward
            | Kernel::LstmStepBackward
            | Kernel::GruStepForward
            | Kernel::GruStepBackward
            | Kernel::LstmStepCombineForward
            | Kernel::LstmStepCombineBackward
            | Kernel::GruStepCombineForward
            | Kernel::GruStepCombineBackward
            | Kernel::LstmChunkForward
            | Kernel::LstmChunkBackward
            | Kernel::GruChunkForward
            | Kernel::GruChunkBackward => "gated_cell.wgsl",
            Kernel::PoolForward
            | Kernel::PoolBackward
            | Kernel::PoolBackwardScatter
            | Kernel::PoolBackwardMeanQuads => "pool.wgsl",
            Kernel::ReverseRows | Kernel::UnitOutput | Kernel::UnitOutputGrad => "layer_io.wgsl",
            Kernel::LossRows => "loss.wgsl",
            Kernel::LossSum
            | Kernel::ColumnSum
            | Kernel::ColumnPartials
            | Kernel::ColumnSumQuads
            | Kernel::ColumnSumLongs
            | Kernel::SquarePartials
            | Kernel::SquarePartialsLongs
            | Kernel::NormFinalize => "reduce.wgsl",
            Kernel::Sgd | Kernel::Adam | Kernel::SgdLongs | Kernel::AdamLongs => "optim.wgsl",
            Kernel::FmaPeak => "ceiling.wgsl",
            Kernel::Cast | Kernel::Transpose | Kernel::TransposeQuads | Kernel::TransposeLongs => {
                "convert.wgsl"
            }
        }
    }

    pub fn entry(self) -> &'static str {
        match self {
            Kernel::Gemm => "gemm",
            Kernel::GemmTiled | Kernel::GemmTiledStep => "gemm_tiled",
            Kernel::GemmWide | Kernel::GemmWideStep => "gemm_wide",
            Kernel::GemmWideQuads | Kernel::GemmWideQuadsStep => "gemm_wide_quads",
            Kernel::GemmTiledQuads | Kernel::GemmTiledQuadsStep => "gemm_tiled_quads",
            Kernel::GemmTallQuads | Kernel::GemmTallQuadsStep => "gemm_tall_quads",
            Kernel::GemmSubgroup | Kernel::GemmSubgroupPairs | Kernel::GemmSubgroupStep => {
                "gemm_subgroup"
            }
            Kernel::GemmSubgroupWindow | Kernel::GemmSubgroupWindowPairs => "gemm_subgroup_window",
            Kernel::GemmWindowQuads
            | Kernel::GemmWindowQuadsPairs
            | Kernel::GemmWindowQuadsA
            | Kernel::GemmWindowQuadsAPairs
            | Kernel::GemmWindowQuadsStep
            | Kernel::GemmWindowQuadsAStep => "gemm_window_quads",
            Kernel::GemmWindowQuadsSweep
            | Kernel::GemmWindowQuadsSweepStorage
            | Kernel::GemmWindowLongsSweep
            | Kernel::GemmWindowLongsSweepStorage => "gemm_window_quads_sweep",
            Kernel::LstmQuadsSweepForward
            | Kernel::LstmLongsSweepForward
            | Kernel::GruQuadsSweepForward
            | Kernel::GruLongsSweepForward => "gated_quads_sweep_forward",
            Kernel::LstmQuadsSweepBackward
            | Kernel::LstmLongsSweepBackward
            | Kernel::GruQuadsSweepBackward
            | Kernel::GruLongsSweepBackward => "gated_quads_sweep_backward",
            Kernel::GemmOuterQuads
            | Kernel::GemmOuterQuadsPairs
            | Kernel::GemmOuterQuadsXPairs
            | Kernel::GemmOuterQuadsYPairs
            | Kernel::GemmOuterQuadsRows
            | Kernel::GemmOuterQuadsRowsYPairs
            | Kernel::GemmOuterLongs
            | Kernel::GemmOuterLongsRows
            | Kernel::GemmOuterQuadsShort
            | Kernel::GemmOuterLongsShort => "gemm_outer_quads",
            Kernel::GemmOuterNarrow | Kernel::GemmOuterNarrowLongs => "gemm_outer_narrow",
            Kernel::GemmSubgroupWindowA | Kernel::GemmSubgroupWindowAPairs => {
                "gemm_subgroup_window_a"
            }
            Kernel::GemmSplitReduce => "gemm_split_reduce",
            Kernel::EmbedGather => "embed_gather",
            Kernel::EmbedGatherQuads | Kernel::EmbedGatherLongs => "embed_gather_quads",
            Kernel::EmbedGrad => "embed_grad",
            Kernel::EmbedGradQuads | Kernel::EmbedGradLongs => "embed_grad_quads",
            Kernel::RnnStepForward => "rnn_step_forward",
            Kernel::RnnStepBackward => "rnn_step_backward",
            Kernel::RnnChunkForward => "rnn_chunk_forward",
            Kernel::RnnChunkBackward => "rnn_chunk_backward",
            Kernel::RnnStepCombineForward => "rnn_step_combine_forward",
            Kernel::RnnStepCombineBackward => "rnn_step_combine_backward",
            Kernel::RnnStepCombineForwardQuads => "rnn_step_combine_forward_quads",
            Kernel::RnnStepCombineBackwardQuads => "rnn_step_combine_backward_quads",
            Kernel::LstmStepForward => "lstm_step_forward",
            Kernel::LstmStepBackward => "lstm_step_backward",
            Kernel::GruStepForward => "gru_step_forward",
            Kernel::GruStepBackward => "gru_step_backward",
            Kernel::LstmStepCombineForward => "lstm_step_combine_forward",
            Kernel::LstmStepCombineBackward => "lstm_step_combine_backward",
            Kernel::GruStepCombineForward => "gru_step_combine_forward",
            Kernel::GruStepCombineBackward => "gru_step_combine_backward",
            Kernel::LstmChunkForward => "lstm_chunk_forward",
            Kernel::LstmChunkBackward => "lstm_chunk_backward",
            Kernel::GruChunkForward => "gru_chunk_forward",
            Kernel::GruChunkBackward => "gru_chunk_backward",
            Kernel::PoolForward => "pool_forward",
            Kernel::PoolBackward => "pool_backward",
            Kernel::PoolBackwardScatter => "pool_backward_scatter",
            Kernel::PoolBackwardMeanQuads => "pool_backward_mean_quads",
            Kernel::ReverseRows => "reverse_rows",
            Kernel::UnitOutput => "unit_output",
            Kernel::UnitOutputGrad => "unit_output_grad",
            Kernel::LossRows => "loss_rows",
            Kernel::LossSum => "loss_sum",
            Kernel::ColumnSum => "column_sum",
            Kernel::ColumnPartials => "column_partials",
            Kernel::ColumnSumQuads | Kernel::ColumnSumLongs => "column_sum_quads",
            Kernel::SquarePartials | Kernel::SquarePartialsLongs => "square_partials",
            Kernel::NormFinalize => "norm_finalize",
            Kernel::Sgd | Kernel::SgdLongs => "sgd",
            Kernel::Adam | Kernel::AdamLongs => "adam",
            Kernel::FmaPeak => "fma_peak",
            Kernel::Cast => "convert_elements",
            Kernel::Transpose => "transpose_elements",
            Kernel::TransposeQuads | Kernel::TransposeLongs => "transpose_quads",
        }
    }

    /// Pipeline-overridable constants of this variant of its entry point.
    pub fn constants(self) -> &'static [(&'static str, f64)] {
        match self {
            Kernel::GemmSubgroupPairs
            | Kernel::GemmSubgroupWindowPairs
            | Kernel::GemmSubgroupWindowAPairs
            | Kernel::GemmWindowQuadsPairs
            | Kernel::GemmOuterQuadsPairs => &[("PACKED_PAIRS", 1.0)],
            Kernel::GemmOuterQuadsXPairs => &[("X_PAIRS", 1.0)],
            Kernel::GemmOuterQuadsYPairs => &[("Y_PAIRS", 1.0)],
            Kernel::GemmOuterQuadsRows | Kernel::GemmOuterLongsRows => &[("A_ROWS", 1.0)],
            Kernel::GemmOuterQuadsShort | Kernel::GemmOuterLongsShort => &[("ROW_QUADS", 5.0)],
            Kernel::GemmOuterQuadsRowsYPairs => &[("A_ROWS", 1.0), ("Y_PAIRS", 1.0)],
            Kernel::GemmWindowQuadsA => &[("TRANSPOSED", 1.0)],
            Kernel::GemmWindowQuadsAPairs => &[("TRANSPOSED", 1.0), ("PACKED_PAIRS", 1.0)],
            Kernel::GemmWindowQuadsAStep => &[("TRANSPOSED", 1.0), ("STEP_COPY", 1.0)],
            Kernel::GemmSubgroupStep
            | Kernel::GemmTiledStep
            | Kernel::GemmWideStep
            | Kernel::GemmWideQuadsStep
            | Kernel::GemmTiledQuadsStep
            | Kernel::GemmTallQuadsStep
            | Kernel::GemmWindowQuadsStep => &[("A_FROM_C", 1.0)],
            Kernel::GemmWindowQuadsSweep | Kernel::GemmWindowLongsSweep => {
                &[("TRANSPOSED", 1.0), ("SWEEP", 1.0)]
            }
            Kernel::GemmWindowQuadsSweepStorage | Kernel::GemmWindowLongsSweepStorage => {
                &[("TRANSPOSED", 1.0), ("SWEEP", 1.0), ("SWEEP_STORAGE", 1.0)]
            }
            Kernel::GruQuadsSweepForward
            | Kernel::GruQuadsSweepBackward
            | Kernel::GruLongsSweepForward
            | Kernel::GruLongsSweepBackward => &[("GATED_LSTM", 0.0)],
            _ => &[],
        }
    }

    /// The kernel's WGSL compiled for `half`: every storage binding declared
    /// `array<NAME_t>` gets `alias NAME_t = f16;` where `half` has its slot, `f32` elsewhere
    /// (so one source serves both precisions; reads are written `f32(x[i])`, writes
    /// `x[i] = NAME_t(v)`). An f16 buffer bound to a binding without such an alias is a
    /// programming error, reported here.
    pub fn source_for(self, half: HalfMask) -> Result<String, String> {
        typed_source(self.source(), half, self.long_words())
            .map_err(|e| format!("kernel `{}` ({}): {e}", self.entry(), self.file()))
    }

    /// Whether this kernel's 16-byte storage words (`quad_word`) are compiled as 64-bit
    /// integers (2 components a word, which lavapipe loads in half as many per-lane loops);
    /// the host offers these kernels only on adapters with `SHADER_INT64`.
    pub fn long_words(self) -> bool {
        matches!(
            self,
            Kernel::GemmOuterLongs
                | Kernel::GemmOuterLongsRows
                | Kernel::GemmOuterNarrowLongs
                | Kernel::GemmOuterLongsShort
                | Kernel::GemmWindowLongsSweep
                | Kernel::GemmWindowLongsSweepStorage
                | Kernel::LstmLongsSweepForward
                | Kernel::LstmLongsSweepBackward
                | Kernel::GruLongsSweepForward
                | Kernel::GruLongsSweepBackward
                | Kernel::ColumnSumLongs
                | Kernel::TransposeLongs
                | Kernel::EmbedGradLongs
                | Kernel::EmbedGatherLongs
                | Kernel::SquarePartialsLongs
                | Kernel::SgdLongs
                | Kernel::AdamLongs
        )
    }

    pub fn source(self) -> &'static str {
        SHADER_FILES
            .iter()
            .find(|(name, _)| *name == self.file())
            .map(|(_, src)| *src)
            .expect("every kernel's file is in SHADER_FILES")
    }
}

/// Which binding slots of a kernel hold f16 buffers (bit i: slot i).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HalfMask(pub u32);

impl HalfMask {
    pub fn with(self, slot: u32) -> Self {
        Self(self.0 | (1 << slot))
    }
    pub fn has(self, slot: u32) -> bool {
        self.0 & (1 << slot) != 0
    }
}

/// The `(slot, alias)` of every storage binding declared `array<NAME_t>` in `source`.
pub fn storage_aliases(source: &str) -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = Vec::new();
    for line in source.lines() {
        let Some(at) = line.find("@binding(") else {
            continue;
        };
        let rest = &line[at + "@binding(".len()..];
        let Some(slot) = rest
            .split(')')
            .next()
            .and_then(|n| n.trim().parse::<u32>().ok())
        else {
            continue;
        };
        let Some(open) = rest.find("array<") else {
            continue;
        };
        let element = &rest[open + "array<".len()..];
        // `array<NAME_t>`, or `array<vec4<NAME_t>>` (four elements at a time).
        let element = element.strip_prefix("vec4<").unwrap_or(element);
        let Some(element) = element.split('>').next() else {
            continue;
        };
        if element.ends_with("_t") && !out.iter().any(|(_, a)| a == element) {
            out.push((slot, element.to_string()));
        }
    }
    out
}

/// The 16-byte storage words of `gemm_quads.wgsl` as two 64-bit integers
/// ([`Kernel::long_words`]): 2 components a word, which lavapipe loads and stores with half
/// as many per-lane loops as 4 of 4 bytes (little-endian: the low half is the first value).
const WORDS_INT64: &str = "\
alias quad_word = vec2<u64>;
fn quad_bits(w: vec2<u64>) -> vec4<u32> {
    return vec4<u32>(u32(w.x), u32(w.x >> 32u), u32(w.y), u32(w.y >> 32u));
}
fn quad_word_of(v: vec4<u32>) -> vec2<u64> {
    return vec2<u64>(u64(v.x) | (u64(v.y) << 32u), u64(v.z) | (u64(v.w) << 32u));
}
";

/// A storage word's 4 f32 values and back, for either kind of word.
const WORDS_F32: &str = "\
fn quad_f32s(w: quad_word) -> vec4<f32> {
    return bitcast<vec4<f32>>(quad_bits(w));
}
fn f32s_word(v: vec4<f32>) -> quad_word {
    return quad_word_of(bitcast<vec4<u32>>(v));
}
";

/// The same words as four 4-byte components (every other kernel).
const WORDS_INT32: &str = "\
alias quad_word = vec4<u32>;
fn quad_bits(w: vec4<u32>) -> vec4<u32> {
    return w;
}
fn quad_word_of(v: vec4<u32>) -> vec4<u32> {
    return v;
}
";

/// `source` with its parts spliced in ([`SHADER_PARTS`]), the element-type aliases of
/// [`Kernel::source_for`] for `half`, and where it
/// uses the storage word `quad_word`, its type and functions: two 64-bit integers with
/// `int64`, else four 32-bit ones.
pub fn typed_source(source: &str, half: HalfMask, int64: bool) -> Result<String, String> {
    let source = &with_parts(source)?;
    let aliases = storage_aliases(source);
    let words = raw_word_slots(source);
    for slot in 0..32 {
        if half.has(slot) && !aliases.iter().any(|(s, _)| *s == slot) && !words.contains(&slot) {
            return Err(format!(
                "binding {slot} takes f32 only, but an f16 buffer was bound"
            ));
        }
    }
    let mut out = String::new();
    if half.0 != 0 {
        out.push_str("enable f16;\n");
    }
    out.push_str(source);
    out.push_str("\n// Element types of this pipeline's storage bindings.\n");
    for (slot, alias) in aliases {
        let ty = if half.has(slot) { "f16" } else { "f32" };
        out.push_str(&format!("alias {alias} = {ty};\n"));
    }
    if source.contains("array<quad_word>") {
        out.push_str("// Storage words.\n");
        out.push_str(if int64 { WORDS_INT64 } else { WORDS_INT32 });
        out.push_str(WORDS_F32);
    }
    Ok(out)
}

/// The storage bindings declared `array<u32>`, `array<vec2<u32>>`, `array<vec4<u32>>` or
/// `array<quad_word>`: raw 4-, 8- or 16-byte words, which may view any buffer.
fn raw_word_slots(source: &str) -> Vec<u32> {
    source
        .lines()
        .filter(|l| {
            l.contains("var<storage")
                && [
                    "array<u32>",
                    "array<vec2<u32>>",
                    "array<vec4<u32>>",
                    "array<quad_word>",
                ]
                .iter()
                .any(|t| l.contains(t))
        })
        .filter_map(|l| {
            let rest = &l[l.find("@binding(")? + "@binding(".len()..];
            rest.split(')').next()?.trim().parse().ok()
        })
        .collect()
}
