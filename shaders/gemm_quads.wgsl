// GEMMs reading 4 values a load, for adapters whose subgroups are 8 lanes (lavapipe):
//   C[m, n] = sum_k A(m, k) · B(k, n)  (+ bias[n]) (+ bias2[n])  (+ C if ACCUMULATE).
// Same parameters and binding slots as the kernels of gemm_subgroup.wgsl (the product of
// `GemmParams`; no split-K, no fused step). On lavapipe every load with a varying address
// costs each lane a bounds-checked access (a storage buffer: branches per lane and
// component; a uniform buffer: a branch-free gather), so the loads are what these kernels
// save (BENCHMARKS.md, "four k values a load"); the stores likewise: where C is f32 and
// its offset and N are multiples of 4 (flag QUAD_STORE, set by `ops::gemm`), each lane
// stores 4 consecutive outputs of C's row as one 16-byte word (c_words, binding 14: one
// per-lane loop instead of 4; BENCHMARKS.md, "stores of whole quads"), else value by
// value.
//
// gemm_window_quads: both operands run along k with unit stride (x·Wᵀ). One (X) is read
// from its storage buffer, the other (Y) through a 64 KiB uniform-buffer window of its
// buffer (`ops::gemm` splits a larger one into ranges, one dispatch each), 4 consecutive k
// values at a time (one vec4 of f32s, or with PACKED_PAIRS two words of f16 pairs).
//   TRANSPOSED = false: X = A (its rows), Y = B (its columns, B's window); kernel row = m.
//   TRANSPOSED = true:  X = Bᵀ (B's columns), Y = Aᵀ (A's rows, A's window); kernel row = n,
//                       and the result is stored transposed (Cᵀ = Bᵀ·Aᵀ).
//   K, offsets and line strides must be multiples of 4: `GemmKernel::quads_apply`.
//   Fused Elman steps (flags STEP_FORWARD or STEP_BACKWARD; f32): h[t] or da[t + 1] is read
//   through the C binding (A_FROM_C, not TRANSPOSED: X's rows), from the buffer the step
//   writes h[t + 1] or da[t] into at a disjoint offset, or (STEP_COPY, TRANSPOSED: Y's lines)
//   through a window of a [B, H] copy that the previous step's store wrote to c_copy (one
//   dispatch cannot bind a buffer both as a window or read-only and read-write); the store
//   finishes the step as gemm_subgroup.wgsl's fused steps and `rnn_step_combine_*` do, with
//   the same operations in the same order (only in the quad stores: the host runs these
//   steps where QUAD_STORE applies, which f32 and H a multiple of 4 ensure):
//     STEP_FORWARD:  C[m, n] = act(bias[bias_off + m·c_rs + n] + sum)          (bias: pre)
//     STEP_BACKWARD: C[m, n] = (bias[bias_off + m·c_rs + n] + sum)             (bias: dh_out)
//                              · act'(aux[bias2_off + m·c_rs + n])             (aux: hs)
//   (c_rs is the whole product's N: B's windows split C's columns, A's windows its rows,
//   each dispatch with its offsets moved to its first element); STEP_COPY also writes
//   c_copy[copy_off + m·c_rs + n] = C[m, n]. The epilogue's lines repeat gemm.wgsl's and
//   gemm_subgroup.wgsl's (WGSL modules share no code; tests/gpu_kernels.rs checks every
//   fused step against the f64 reference).
// gemm_window_quads_sweep: the fused Elman steps of a whole chunk in one dispatch (a
// workgroup per 32 sequences looping over the steps; TRANSPOSED, W_hh's lines through the
// window or from storage, each lane's own sequences' states through C's words); see the
// entry point.
// gated_quads_sweep_forward / _backward: the LSTM's or GRU's steps of a whole chunk in one
// dispatch the same way, each step's product then its cell math; see the end of the file.
// gemm_outer_quads: A runs along m and B along n with unit stride (dYᵀ·X, the weight
// gradients: both operands are [K, ·] row-major). X = A and Y = B, both from storage, 4
// consecutive m (n) values of one k a load; one k after another, 4 a loop iteration.
//   K, offsets and the strides along k must be multiples of 4: `GemmKernel::outer_apply`.
//   A_ROWS (x·W's layout, A [M, K] and B [K, N] row-major, A f32, B f32 or with Y_PAIRS f16:
//   the gated cells' input gradient dX = dGates·W_ih, whose K = G·H makes x·Wᵀ's windows
//   hold few lines, and the recurrences' backward products da[t + 1]·W_hh): A read along k
//   as gemm_window_quads reads X, 4 k values of each of 4 rows a load, then the same
//   products; A's row stride and offset multiples of 4: `GemmKernel::outer_rows_apply`.
//   Either operand may be f16 and the other f32 (X_PAIRS, Y_PAIRS: --precision f16's
//   weight gradients, f32 gradients times f16 activations).
//
// A subgroup owns 32 kernel rows x 32 kernel columns: lane l holds X's values for kernel
// rows 4l .. 4l + 3 (shared by subgroupBroadcast) and Y's for kernel columns 4l .. 4l + 3,
// and keeps one vec4 of accumulators per kernel row (128 accumulators a lane: the tile that
// measured fastest on lavapipe, where more loads per multiply-add cost more than the
// spilled accumulators). A workgroup is one subgroup (8 invocations): lavapipe runs a
// workgroup's subgroups one after another on one thread, so small workgroups only balance
// the 2 threads better (measured: a 256x64x256 product in 8 workgroups 0.17 ms, in 2 of 8
// subgroups 0.17-0.28 ms).
// Dispatch: (ceil(cols / 32), ceil(rows / 32), 1), kernel rows and columns as above.
// Sums run over k in ascending order, one multiply and one add at a time into one
// accumulator per output: the same bits as the other formulations on an adapter that does
// not contract multiply-adds.

struct GemmParams {
    m: u32, n: u32, k: u32,
    a_off: u32, a_rs: u32, a_cs: u32,
    b_off: u32, b_rs: u32, b_cs: u32,
    c_off: u32, c_rs: u32,
    bias_off: u32, bias2_off: u32,
    flags: u32,     // bit 0: add bias, bit 1: add bias2, bit 2: accumulate into C; below
    k_slice: u32,   // split-K (must be 0 here)
    slices: u32,
    copy_off: u32,  // STEP_COPY: where the step's outputs start in c_copy
    steps: u32,     // gemm_window_quads_sweep: the steps it runs
    step_shift: u32, // ... and how far each step moves the offsets (wrapping: - B·H backward)
    // The gated sweeps (gated_quads_sweep_*): the chunk's B and H, and the first step's t.
    cell_batch: u32,
    cell_hidden: u32,
    cell_t0: u32,
}

const ADD_BIAS: u32 = 1u;
const ADD_BIAS2: u32 = 2u;
const ACCUMULATE: u32 = 4u;
const STEP_FORWARD: u32 = 8u;
const STEP_BACKWARD: u32 = 16u;
const RELU: u32 = 32u;
// Set by the host where C is f32 and its offset and rows (N values) are whole 16-byte words:
// every output quad is stored as one word through c_words (on lavapipe each store costs a
// per-lane loop with a bounds check: one for 4 values instead of 4).
const QUAD_STORE: u32 = 64u;
// gemm_outer_quads with QUAD_STORE (C f32, not ACCUMULATE): the accumulators start from C's
// values instead of 0, the sums of the K rows before this dispatch's, which continues them
// (`ops::gemm` walks a long K in blocks of rows, one dispatch each: the same additions in
// the same order as one pass).
const CONTINUE: u32 = 128u;

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(3) var<storage, read> bias: array<bias_t>;
@group(0) @binding(4) var<storage, read_write> c: array<c_t>;
// STEP_BACKWARD's h[t + 1] (any read-only buffer elsewhere).
@group(0) @binding(7) var<storage, read> aux: array<aux_t>;
// STEP_COPY: the step's outputs again, [B, H] at copy_off (f32), which the next step reads
// through its window (any read-write buffer elsewhere: C stands in, of either type).
@group(0) @binding(13) var<storage, read_write> c_copy: array<c_copy_t>;
// 16-byte storage words (4 f32s): `quad_word`, with `quad_bits(w)` (its four 4-byte words),
// `quad_word_of(v)` (the reverse), `quad_f32s(w)` (its 4 f32s) and `f32s_word(v)` (the
// reverse), appended by the host (`gpu::typed_source`): vec2<u64>
// for the pipelines compiled with 64-bit words (`Kernel::long_words`: gemm_outer_quads as
// GemmKernel::OuterLongs, gemm_window_quads_sweep as RecurrenceKernel::GemmSweepLongs; on
// adapters with 64-bit integers), else vec4<u32>. lavapipe loads and stores each component
// of a storage access lane by lane, with a bounds check each, so a 16-byte word costs 2 of
// those loops instead of 4 (BENCHMARKS.md, "8-byte storage words").
// QUAD_STORE: C as 16-byte words (the buffer bound to binding 4).
@group(0) @binding(14) var<storage, read_write> c_words: array<quad_word>;
// Y's 64 KiB window as 4-byte words (Y's offset in the parameters is relative to it).
@group(0) @binding(8) var<uniform> window: array<vec4<u32>, 4096>;
// X's buffer as 16-byte words (4 f32s), and as 8-byte words (4 f16s).
@group(0) @binding(9) var<storage, read> x_quads: array<quad_word>;
@group(0) @binding(10) var<storage, read> x_pairs: array<vec2<u32>>;
// gemm_outer_quads: Y's (B's) buffer the same ways.
@group(0) @binding(11) var<storage, read> y_quads: array<quad_word>;
@group(0) @binding(12) var<storage, read> y_pairs: array<vec2<u32>>;
// gemm_window_quads_sweep: the steps' inputs (binding 3's pre or dh_out) and aux (binding
// 7's hs) again as 16-byte words, so its epilogue reads 4 values a load (f32, offsets
// multiples of 4: `ops::gemm_sweep`); any read-only buffers in the other kernels, which read
// bindings 3 and 7 value by value (theirs may be f16).
@group(0) @binding(24) var<storage, read> step_input_words: array<quad_word>;
@group(0) @binding(25) var<storage, read> step_aux_words: array<quad_word>;

// Set by the host: Y is A (its rows through the window), X is Bᵀ, C stored transposed.
override TRANSPOSED: bool = false;
// Set by the host for f16 operands: each 4-byte word holds the values at k and k + 1.
override PACKED_PAIRS: bool = false;
// gemm_outer_quads with one f16 operand and one f32: X (A) or Y (B) read as f16 pairs.
override X_PAIRS: bool = false;
override Y_PAIRS: bool = false;
// gemm_outer_quads for x·W's layout (f32): A read along k, 4 consecutive k values of one of
// this lane's rows a load, as gemm_window_quads reads X; B along n as before.
override A_ROWS: bool = false;
// Set by the host for gemm_outer_quads where M is at most 20 (the head's weight gradient
// over a POS tagger's 17 or 18 tags): the kernel rows that get products, in quads (5: the
// first 20 of the tile's 32; the other 12 rows' multiply-adds and broadcasts are compiled
// out). 8: all.
override ROW_QUADS: u32 = 8u;
// Set by the host for the fused Elman steps (f32 only): X (A's rows) is read through the C
// binding.
override A_FROM_C: bool = false;
// Set by the host for the fused Elman steps with A's windows (TRANSPOSED, f32): Y (h[t] or
// da[t + 1]) is read through a window of a [B, H] copy, and the store writes each output
// to c_copy as well, the copy the next step reads (the window cannot be of the buffer C is).
override STEP_COPY: bool = false;
// Set by the host for gemm_window_quads_sweep (with TRANSPOSED, f32): X (W_hh's lines) is
// read through the window, and Y (h[t] or da[t + 1]: this lane's own sequences) through C's
// words.
override SWEEP: bool = false;
// ... with X read from its storage buffer (x_quads), where W_hh does not fit one window.
override SWEEP_STORAGE: bool = false;

// C[m, n] = value (+ b1) (+ b2) (+ C), where the flags say so: the value-by-value store.
fn store(m: u32, n: u32, value: f32, b1: f32, b2: f32) {
    if (m >= p.m || n >= p.n) {
        return;
    }
    var v = value;
    if ((p.flags & ADD_BIAS) != 0u) {
        v = v + b1;
    }
    if ((p.flags & ADD_BIAS2) != 0u) {
        v = v + b2;
    }
    let at = p.c_off + m * p.c_rs + n;
    if ((p.flags & ACCUMULATE) != 0u) {
        v = f32(c[at]) + v;
    }
    c[at] = c_t(v);
}

// How many of the 32 kernel rows from row0 are in range.
fn live_rows(row0: u32) -> u32 {
    let rows = select(p.m, p.n, TRANSPOSED);
    return select(0u, min(32u, rows - row0), row0 < rows);
}

// The bias (`which` 1) or second bias (2) of C's column n, 0 where its flag is not set.
fn column_bias(n: u32, which: u32) -> f32 {
    if (which == 1u && (p.flags & ADD_BIAS) != 0u) {
        return f32(bias[p.bias_off + n]);
    }
    if (which == 2u && (p.flags & ADD_BIAS2) != 0u) {
        return f32(bias[p.bias2_off + n]);
    }
    return 0.0;
}

// The tile value by value (where QUAD_STORE does not apply): kernel row r, this lane's
// kernel columns col .. col + 3. A loop over the kernel rows in range, which takes each
// row's accumulators from the front of a copy of the tile and moves the rest up (constant
// indices only, so nothing is lowered to memory): the store's code is compiled once, not
// once for each of 128 values, which on lavapipe takes seconds a kernel (BENCHMARKS.md,
// "stores as loops"); the moves cost little next to the stores themselves. (The plain quad
// stores below stay unrolled: as loops they compiled faster still, but gemm_outer_quads's
// k loop ran 20% slower beside them, 256x128x2048 f32; the fused steps' quad stores, most
// of whose code is the step's epilogue, loop over groups of rows.)
fn store_tile(row0: u32, col: u32, acc: ptr<function, array<vec4<f32>, 32>>) {
    var tile = *acc;
    var b1 = vec4<f32>(0.0);
    var b2 = vec4<f32>(0.0);
    if (!TRANSPOSED) {
        b1 = column_biases(col, 1u);
        b2 = column_biases(col, 2u);
    }
    for (var r = 0u; r < live_rows(row0); r++) {
        let row = row0 + r;
        let v = tile[0];
        for (var j = 0u; j < 4u; j++) {
            if (TRANSPOSED) {
                store(col + j, row, v[j], column_bias(row, 1u), column_bias(row, 2u));
            } else {
                store(row, col + j, v[j], b1[j], b2[j]);
            }
        }
        for (var i = 0u; i < 31u; i++) {
            tile[i] = tile[i + 1u];
        }
    }
}

// gemm_window_quads_sweep: how far the current step has moved C's, the inputs' and aux's
// offsets from the first step's (0 in the other kernels).
var<private> step_offset: u32 = 0u;

// QUAD_STORE: C[m, n0 .. n0 + 3] = value (+ b1) (+ b2) (+ C), or the step's epilogue, as
// store() does for each of the 4 (same operations, same order), written as one word. n0 is
// a multiple of 4 and N too, so the 4 columns are all in range or all out.
fn store_words(m: u32, n0: u32, value: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>) {
    if (m >= p.m || n0 >= p.n) {
        return;
    }
    let e = m * p.c_rs + n0;
    let w = (p.c_off + step_offset + e) >> 2u;
    if ((A_FROM_C || STEP_COPY || SWEEP) && (p.flags & (STEP_FORWARD | STEP_BACKWARD)) != 0u) {
        let relu = (p.flags & RELU) != 0u;
        let g = step_inputs(p.bias_off + step_offset + e) + value;
        var out: vec4<f32>;
        if ((p.flags & STEP_FORWARD) != 0u) {
            out = select(tanh(g), max(g, vec4<f32>(0.0)), relu);
        } else {
            let at = p.bias2_off + step_offset + e;
            let h = step_aux(at);
            let one = vec4<f32>(1.0);
            out = g * select(one - h * h, select(vec4<f32>(0.0), one, h > vec4<f32>(0.0)), relu);
        }
        c_words[w] = f32s_word(out);
        if (STEP_COPY) {
            c_copy[p.copy_off + e] = c_copy_t(out.x);
            c_copy[p.copy_off + e + 1u] = c_copy_t(out.y);
            c_copy[p.copy_off + e + 2u] = c_copy_t(out.z);
            c_copy[p.copy_off + e + 3u] = c_copy_t(out.w);
        }
        return;
    }
    var v = value;
    if ((p.flags & ADD_BIAS) != 0u) {
        v = v + b1;
    }
    if ((p.flags & ADD_BIAS2) != 0u) {
        v = v + b2;
    }
    if ((p.flags & ACCUMULATE) != 0u) {
        v = quad_f32s(c_words[w]) + v;
    }
    c_words[w] = f32s_word(v);
}

// A fused step's inputs at elements at .. at + 3 (a multiple of 4 in the sweep): one word
// there, else 4 values.
fn step_inputs(at: u32) -> vec4<f32> {
    if (SWEEP) {
        return quad_f32s(step_input_words[at >> 2u]);
    }
    return bias_quad(at);
}

// A fused backward step's aux (h[t + 1]) at elements at .. at + 3, as step_inputs.
fn step_aux(at: u32) -> vec4<f32> {
    if (SWEEP) {
        return quad_f32s(step_aux_words[at >> 2u]);
    }
    return vec4<f32>(f32(aux[at]), f32(aux[at + 1u]), f32(aux[at + 2u]), f32(aux[at + 3u]));
}

// bias[at .. at + 3].
fn bias_quad(at: u32) -> vec4<f32> {
    return vec4<f32>(f32(bias[at]), f32(bias[at + 1u]), f32(bias[at + 2u]), f32(bias[at + 3u]));
}

// The bias (`which` 1) or second bias (2) of columns n0 .. n0 + 3, zeros where its flag is
// not set.
fn column_biases(n0: u32, which: u32) -> vec4<f32> {
    if (which == 1u && (p.flags & ADD_BIAS) != 0u) {
        return bias_quad(p.bias_off + n0);
    }
    if (which == 2u && (p.flags & ADD_BIAS2) != 0u) {
        return bias_quad(p.bias2_off + n0);
    }
    return vec4<f32>(0.0);
}

// QUAD_STORE, C not transposed: kernel row r is C's row row0 + r, and this lane's columns
// col .. col + 3 are one quad.
fn store_tile_rows(row0: u32, col: u32, acc: ptr<function, array<vec4<f32>, 32>>) {
    if (A_FROM_C) {
        store_step_rows(row0, col, acc);
        return;
    }
    let b1 = column_biases(col, 1u);
    let b2 = column_biases(col, 2u);
    store_words(row0 + 0u, col, (*acc)[0], b1, b2);
    store_words(row0 + 1u, col, (*acc)[1], b1, b2);
    store_words(row0 + 2u, col, (*acc)[2], b1, b2);
    store_words(row0 + 3u, col, (*acc)[3], b1, b2);
    store_words(row0 + 4u, col, (*acc)[4], b1, b2);
    store_words(row0 + 5u, col, (*acc)[5], b1, b2);
    store_words(row0 + 6u, col, (*acc)[6], b1, b2);
    store_words(row0 + 7u, col, (*acc)[7], b1, b2);
    store_words(row0 + 8u, col, (*acc)[8], b1, b2);
    store_words(row0 + 9u, col, (*acc)[9], b1, b2);
    store_words(row0 + 10u, col, (*acc)[10], b1, b2);
    store_words(row0 + 11u, col, (*acc)[11], b1, b2);
    store_words(row0 + 12u, col, (*acc)[12], b1, b2);
    store_words(row0 + 13u, col, (*acc)[13], b1, b2);
    store_words(row0 + 14u, col, (*acc)[14], b1, b2);
    store_words(row0 + 15u, col, (*acc)[15], b1, b2);
    store_words(row0 + 16u, col, (*acc)[16], b1, b2);
    store_words(row0 + 17u, col, (*acc)[17], b1, b2);
    store_words(row0 + 18u, col, (*acc)[18], b1, b2);
    store_words(row0 + 19u, col, (*acc)[19], b1, b2);
    store_words(row0 + 20u, col, (*acc)[20], b1, b2);
    store_words(row0 + 21u, col, (*acc)[21], b1, b2);
    store_words(row0 + 22u, col, (*acc)[22], b1, b2);
    store_words(row0 + 23u, col, (*acc)[23], b1, b2);
    store_words(row0 + 24u, col, (*acc)[24], b1, b2);
    store_words(row0 + 25u, col, (*acc)[25], b1, b2);
    store_words(row0 + 26u, col, (*acc)[26], b1, b2);
    store_words(row0 + 27u, col, (*acc)[27], b1, b2);
    store_words(row0 + 28u, col, (*acc)[28], b1, b2);
    store_words(row0 + 29u, col, (*acc)[29], b1, b2);
    store_words(row0 + 30u, col, (*acc)[30], b1, b2);
    store_words(row0 + 31u, col, (*acc)[31], b1, b2);
}

// QUAD_STORE, C transposed (TRANSPOSED): kernel rows row0 + 4i .. + 3 are C's columns n0 ..
// n0 + 3 (one quad: component q of accumulators 4i + q), kernel column col + j is C's row.
fn store_quads_transposed(
    row0: u32,
    col: u32,
    i: u32,
    q0: vec4<f32>,
    q1: vec4<f32>,
    q2: vec4<f32>,
    q3: vec4<f32>,
) {
    let n0 = row0 + 4u * i;
    let b1 = column_biases(n0, 1u);
    let b2 = column_biases(n0, 2u);
    store_words(col, n0, vec4<f32>(q0.x, q1.x, q2.x, q3.x), b1, b2);
    store_words(col + 1u, n0, vec4<f32>(q0.y, q1.y, q2.y, q3.y), b1, b2);
    store_words(col + 2u, n0, vec4<f32>(q0.z, q1.z, q2.z, q3.z), b1, b2);
    store_words(col + 3u, n0, vec4<f32>(q0.w, q1.w, q2.w, q3.w), b1, b2);
}

fn store_tile_columns(row0: u32, col: u32, acc: ptr<function, array<vec4<f32>, 32>>) {
    if (A_FROM_C || STEP_COPY || SWEEP) {
        store_step_columns(row0, col, acc);
        return;
    }
    store_quads_transposed(row0, col, 0u, (*acc)[0], (*acc)[1], (*acc)[2], (*acc)[3]);
    store_quads_transposed(row0, col, 1u, (*acc)[4], (*acc)[5], (*acc)[6], (*acc)[7]);
    store_quads_transposed(row0, col, 2u, (*acc)[8], (*acc)[9], (*acc)[10], (*acc)[11]);
    store_quads_transposed(row0, col, 3u, (*acc)[12], (*acc)[13], (*acc)[14], (*acc)[15]);
    store_quads_transposed(row0, col, 4u, (*acc)[16], (*acc)[17], (*acc)[18], (*acc)[19]);
    store_quads_transposed(row0, col, 5u, (*acc)[20], (*acc)[21], (*acc)[22], (*acc)[23]);
    store_quads_transposed(row0, col, 6u, (*acc)[24], (*acc)[25], (*acc)[26], (*acc)[27]);
    store_quads_transposed(row0, col, 7u, (*acc)[28], (*acc)[29], (*acc)[30], (*acc)[31]);
}

// The fused steps' stores with A's windows (A_FROM_C), as store_step_columns's below, 8
// rows an iteration (as fast as the unrolled stores, in 2 s of compiling instead of 9).
fn store_step_rows(row0: u32, col: u32, acc: ptr<function, array<vec4<f32>, 32>>) {
    var tile = *acc;
    let b1 = column_biases(col, 1u);
    let b2 = column_biases(col, 2u);
    for (var r = row0; r < row0 + live_rows(row0); r += 8u) {
        store_words(r, col, tile[0], b1, b2);
        store_words(r + 1u, col, tile[1], b1, b2);
        store_words(r + 2u, col, tile[2], b1, b2);
        store_words(r + 3u, col, tile[3], b1, b2);
        store_words(r + 4u, col, tile[4], b1, b2);
        store_words(r + 5u, col, tile[5], b1, b2);
        store_words(r + 6u, col, tile[6], b1, b2);
        store_words(r + 7u, col, tile[7], b1, b2);
        for (var i = 0u; i < 24u; i++) {
            tile[i] = tile[i + 8u];
        }
    }
}

// The fused steps' stores (their epilogue, inlined once an output quad, made these kernels
// take 9-14 s each to compile on lavapipe): a loop over the kernel rows in range, 16 an
// iteration, taking them from the front of a copy of the tile and moving the rest up, as
// store_tile does (8 an iteration compiled in 2 s instead of 5 but left the sweep 2-4%
// slower; BENCHMARKS.md, "stores as loops").
fn store_step_columns(row0: u32, col: u32, acc: ptr<function, array<vec4<f32>, 32>>) {
    var tile = *acc;
    for (var n0 = row0; n0 < row0 + live_rows(row0); n0 += 16u) {
        store_quads_transposed(n0, col, 0u, tile[0], tile[1], tile[2], tile[3]);
        store_quads_transposed(n0, col, 1u, tile[4], tile[5], tile[6], tile[7]);
        store_quads_transposed(n0, col, 2u, tile[8], tile[9], tile[10], tile[11]);
        store_quads_transposed(n0, col, 3u, tile[12], tile[13], tile[14], tile[15]);
        for (var i = 0u; i < 16u; i++) {
            tile[i] = tile[i + 16u];
        }
    }
}

// The subgroup's tile, stored by quads where the host set QUAD_STORE (always for the fused
// steps, whose variants then compile no other store), else value by value.
fn store_results(row0: u32, col: u32, acc: ptr<function, array<vec4<f32>, 32>>) {
    if (A_FROM_C || STEP_COPY || (p.flags & QUAD_STORE) != 0u) {
        if (TRANSPOSED) {
            store_tile_columns(row0, col, acc);
        } else {
            store_tile_rows(row0, col, acc);
        }
        return;
    }
    store_tile(row0, col, acc);
}

// acc[r] += the products of 4 k values k0 < k1 < k2 < k3, one accumulator at a time:
// acc[r] = (((acc[r] + X(r, k0)·y0) + X(r, k1)·y1) + X(r, k2)·y2) + X(r, k3)·y3, where
// X(r, ki) is kernel row r = 4q + c of the subgroup's tile at ki (lane q's xi holds X's
// lines 4q .. 4q + 3 at ki, shared by subgroupBroadcast) and yi = Y(ki, this lane's 4
// kernel columns); only the first ROW_QUADS lanes' lines (the rest are past M and never
// stored). Each accumulator's four products in a row, rather than one k for all 32 and then
// the next, keep LLVM on lavapipe from spilling the products of one k while it adds those
// of another (BENCHMARKS.md, "the products one accumulator at a time"); the sums are the
// same operations in the same order either way.
fn add_products(
    acc: ptr<function, array<vec4<f32>, 32>>,
    x0: vec4<f32>,
    x1: vec4<f32>,
    x2: vec4<f32>,
    x3: vec4<f32>,
    y0: vec4<f32>,
    y1: vec4<f32>,
    y2: vec4<f32>,
    y3: vec4<f32>,
) {
    (*acc)[0] = (*acc)[0] + subgroupBroadcast(x0.x, 0u) * y0 + subgroupBroadcast(x1.x, 0u) * y1
        + subgroupBroadcast(x2.x, 0u) * y2 + subgroupBroadcast(x3.x, 0u) * y3;
    (*acc)[1] = (*acc)[1] + subgroupBroadcast(x0.y, 0u) * y0 + subgroupBroadcast(x1.y, 0u) * y1
        + subgroupBroadcast(x2.y, 0u) * y2 + subgroupBroadcast(x3.y, 0u) * y3;
    (*acc)[2] = (*acc)[2] + subgroupBroadcast(x0.z, 0u) * y0 + subgroupBroadcast(x1.z, 0u) * y1
        + subgroupBroadcast(x2.z, 0u) * y2 + subgroupBroadcast(x3.z, 0u) * y3;
    (*acc)[3] = (*acc)[3] + subgroupBroadcast(x0.w, 0u) * y0 + subgroupBroadcast(x1.w, 0u) * y1
        + subgroupBroadcast(x2.w, 0u) * y2 + subgroupBroadcast(x3.w, 0u) * y3;
    if (ROW_QUADS > 1u) {
        (*acc)[4] = (*acc)[4] + subgroupBroadcast(x0.x, 1u) * y0 + subgroupBroadcast(x1.x, 1u) * y1
            + subgroupBroadcast(x2.x, 1u) * y2 + subgroupBroadcast(x3.x, 1u) * y3;
        (*acc)[5] = (*acc)[5] + subgroupBroadcast(x0.y, 1u) * y0 + subgroupBroadcast(x1.y, 1u) * y1
            + subgroupBroadcast(x2.y, 1u) * y2 + subgroupBroadcast(x3.y, 1u) * y3;
        (*acc)[6] = (*acc)[6] + subgroupBroadcast(x0.z, 1u) * y0 + subgroupBroadcast(x1.z, 1u) * y1
            + subgroupBroadcast(x2.z, 1u) * y2 + subgroupBroadcast(x3.z, 1u) * y3;
        (*acc)[7] = (*acc)[7] + subgroupBroadcast(x0.w, 1u) * y0 + subgroupBroadcast(x1.w, 1u) * y1
            + subgroupBroadcast(x2.w, 1u) * y2 + subgroupBroadcast(x3.w, 1u) * y3;
    }
    if (ROW_QUADS > 2u) {
        (*acc)[8] = (*acc)[8] + subgroupBroadcast(x0.x, 2u) * y0 + subgroupBroadcast(x1.x, 2u) * y1
            + subgroupBroadcast(x2.x, 2u) * y2 + subgroupBroadcast(x3.x, 2u) * y3;
        (*acc)[9] = (*acc)[9] + subgroupBroadcast(x0.y, 2u) * y0 + subgroupBroadcast(x1.y, 2u) * y1
            + subgroupBroadcast(x2.y, 2u) * y2 + subgroupBroadcast(x3.y, 2u) * y3;
        (*acc)[10] = (*acc)[10] + subgroupBroadcast(x0.z, 2u) * y0 + subgroupBroadcast(x1.z, 2u) * y1
            + subgroupBroadcast(x2.z, 2u) * y2 + subgroupBroadcast(x3.z, 2u) * y3;
        (*acc)[11] = (*acc)[11] + subgroupBroadcast(x0.w, 2u) * y0 + subgroupBroadcast(x1.w, 2u) * y1
            + subgroupBroadcast(x2.w, 2u) * y2 + subgroupBroadcast(x3.w, 2u) * y3;
    }
    if (ROW_QUADS > 3u) {
        (*acc)[12] = (*acc)[12] + subgroupBroadcast(x0.x, 3u) * y0 + subgroupBroadcast(x1.x, 3u) * y1
            + subgroupBroadcast(x2.x, 3u) * y2 + subgroupBroadcast(x3.x, 3u) * y3;
        (*acc)[13] = (*acc)[13] + subgroupBroadcast(x0.y, 3u) * y0 + subgroupBroadcast(x1.y, 3u) * y1
            + subgroupBroadcast(x2.y, 3u) * y2 + subgroupBroadcast(x3.y, 3u) * y3;
        (*acc)[14] = (*acc)[14] + subgroupBroadcast(x0.z, 3u) * y0 + subgroupBroadcast(x1.z, 3u) * y1
            + subgroupBroadcast(x2.z, 3u) * y2 + subgroupBroadcast(x3.z, 3u) * y3;
        (*acc)[15] = (*acc)[15] + subgroupBroadcast(x0.w, 3u) * y0 + subgroupBroadcast(x1.w, 3u) * y1
            + subgroupBroadcast(x2.w, 3u) * y2 + subgroupBroadcast(x3.w, 3u) * y3;
    }
    if (ROW_QUADS > 4u) {
        (*acc)[16] = (*acc)[16] + subgroupBroadcast(x0.x, 4u) * y0 + subgroupBroadcast(x1.x, 4u) * y1
            + subgroupBroadcast(x2.x, 4u) * y2 + subgroupBroadcast(x3.x, 4u) * y3;
        (*acc)[17] = (*acc)[17] + subgroupBroadcast(x0.y, 4u) * y0 + subgroupBroadcast(x1.y, 4u) * y1
            + subgroupBroadcast(x2.y, 4u) * y2 + subgroupBroadcast(x3.y, 4u) * y3;
        (*acc)[18] = (*acc)[18] + subgroupBroadcast(x0.z, 4u) * y0 + subgroupBroadcast(x1.z, 4u) * y1
            + subgroupBroadcast(x2.z, 4u) * y2 + subgroupBroadcast(x3.z, 4u) * y3;
        (*acc)[19] = (*acc)[19] + subgroupBroadcast(x0.w, 4u) * y0 + subgroupBroadcast(x1.w, 4u) * y1
            + subgroupBroadcast(x2.w, 4u) * y2 + subgroupBroadcast(x3.w, 4u) * y3;
    }
    if (ROW_QUADS > 5u) {
        (*acc)[20] = (*acc)[20] + subgroupBroadcast(x0.x, 5u) * y0 + subgroupBroadcast(x1.x, 5u) * y1
            + subgroupBroadcast(x2.x, 5u) * y2 + subgroupBroadcast(x3.x, 5u) * y3;
        (*acc)[21] = (*acc)[21] + subgroupBroadcast(x0.y, 5u) * y0 + subgroupBroadcast(x1.y, 5u) * y1
            + subgroupBroadcast(x2.y, 5u) * y2 + subgroupBroadcast(x3.y, 5u) * y3;
        (*acc)[22] = (*acc)[22] + subgroupBroadcast(x0.z, 5u) * y0 + subgroupBroadcast(x1.z, 5u) * y1
            + subgroupBroadcast(x2.z, 5u) * y2 + subgroupBroadcast(x3.z, 5u) * y3;
        (*acc)[23] = (*acc)[23] + subgroupBroadcast(x0.w, 5u) * y0 + subgroupBroadcast(x1.w, 5u) * y1
            + subgroupBroadcast(x2.w, 5u) * y2 + subgroupBroadcast(x3.w, 5u) * y3;
    }
    if (ROW_QUADS > 6u) {
        (*acc)[24] = (*acc)[24] + subgroupBroadcast(x0.x, 6u) * y0 + subgroupBroadcast(x1.x, 6u) * y1
            + subgroupBroadcast(x2.x, 6u) * y2 + subgroupBroadcast(x3.x, 6u) * y3;
        (*acc)[25] = (*acc)[25] + subgroupBroadcast(x0.y, 6u) * y0 + subgroupBroadcast(x1.y, 6u) * y1
            + subgroupBroadcast(x2.y, 6u) * y2 + subgroupBroadcast(x3.y, 6u) * y3;
        (*acc)[26] = (*acc)[26] + subgroupBroadcast(x0.z, 6u) * y0 + subgroupBroadcast(x1.z, 6u) * y1
            + subgroupBroadcast(x2.z, 6u) * y2 + subgroupBroadcast(x3.z, 6u) * y3;
        (*acc)[27] = (*acc)[27] + subgroupBroadcast(x0.w, 6u) * y0 + subgroupBroadcast(x1.w, 6u) * y1
            + subgroupBroadcast(x2.w, 6u) * y2 + subgroupBroadcast(x3.w, 6u) * y3;
    }
    if (ROW_QUADS > 7u) {
        (*acc)[28] = (*acc)[28] + subgroupBroadcast(x0.x, 7u) * y0 + subgroupBroadcast(x1.x, 7u) * y1
            + subgroupBroadcast(x2.x, 7u) * y2 + subgroupBroadcast(x3.x, 7u) * y3;
        (*acc)[29] = (*acc)[29] + subgroupBroadcast(x0.y, 7u) * y0 + subgroupBroadcast(x1.y, 7u) * y1
            + subgroupBroadcast(x2.y, 7u) * y2 + subgroupBroadcast(x3.y, 7u) * y3;
        (*acc)[30] = (*acc)[30] + subgroupBroadcast(x0.z, 7u) * y0 + subgroupBroadcast(x1.z, 7u) * y1
            + subgroupBroadcast(x2.z, 7u) * y2 + subgroupBroadcast(x3.z, 7u) * y3;
        (*acc)[31] = (*acc)[31] + subgroupBroadcast(x0.w, 7u) * y0 + subgroupBroadcast(x1.w, 7u) * y1
            + subgroupBroadcast(x2.w, 7u) * y2 + subgroupBroadcast(x3.w, 7u) * y3;
    }
}

// X's 4 values at element `at` (a multiple of 4) as 16 bytes: from X's buffer, or with
// A_FROM_C through the C binding (one scalar load each: on lavapipe a vec4 load costs the
// same 4), or in gemm_window_quads_sweep (W_hh's lines) through the window unless
// SWEEP_STORAGE.
fn x_quad(at: u32) -> vec4<u32> {
    if (A_FROM_C) {
        return bitcast<vec4<u32>>(vec4<f32>(f32(c[at]), f32(c[at + 1u]), f32(c[at + 2u]), f32(c[at + 3u])));
    }
    if (SWEEP && !SWEEP_STORAGE) {
        return window[at >> 2u];
    }
    return quad_bits(x_quads[at >> 2u]);
}

// Y's 4 values at element `at` (a multiple of 4): through the window, or in
// gemm_window_quads_sweep (this lane's own states) through C's words.
fn y_quad(at: u32) -> vec4<u32> {
    if (SWEEP) {
        return quad_bits(c_words[at >> 2u]);
    }
    return window[at >> 2u];
}

// The values at k-word w (0..3) of four lines' quads, as f32s (f32 operands).
fn word_values(q0: vec4<u32>, q1: vec4<u32>, q2: vec4<u32>, q3: vec4<u32>, w: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(vec4<u32>(q0[w], q1[w], q2[w], q3[w]));
}

// Words w and w + 1 of the window (4 f16 values).
fn window_pair_words(w: u32) -> vec2<u32> {
    return vec2<u32>(window[w >> 2u][w & 3u], window[(w + 1u) >> 2u][(w + 1u) & 3u]);
}

// The values at word w (0, 1), half h (0: the even k, 1: the odd one) of four lines' two
// words of f16 pairs.
fn pair_values(
    q0: vec2<u32>,
    q1: vec2<u32>,
    q2: vec2<u32>,
    q3: vec2<u32>,
    w: u32,
    h: u32,
) -> vec4<f32> {
    return vec4<f32>(
        unpack2x16float(q0[w])[h],
        unpack2x16float(q1[w])[h],
        unpack2x16float(q2[w])[h],
        unpack2x16float(q3[w])[h],
    );
}

// acc += the products over all of K of X's lines starting at elements x0 .. x3 (this lane's
// 4 kernel rows) and Y's lines at y0 .. y3 (its 4 kernel columns; x_quad and y_quad say
// where each is read from), 4 k values a load, k ascending.
fn multiply_tile(
    acc: ptr<function, array<vec4<f32>, 32>>,
    x0: u32,
    x1: u32,
    x2: u32,
    x3: u32,
    y0: u32,
    y1: u32,
    y2: u32,
    y3: u32,
) {
    for (var kk = 0u; kk < p.k; kk += 4u) {
        if (PACKED_PAIRS) {
            // 4 k values: 2 words of f16 pairs a line (8 a load would double the loop's
            // code, which then runs slower on lavapipe than the loads it saves).
            let xq0 = x_pairs[(x0 + kk) >> 2u];
            let xq1 = x_pairs[(x1 + kk) >> 2u];
            let xq2 = x_pairs[(x2 + kk) >> 2u];
            let xq3 = x_pairs[(x3 + kk) >> 2u];
            let yq0 = window_pair_words((y0 + kk) >> 1u);
            let yq1 = window_pair_words((y1 + kk) >> 1u);
            let yq2 = window_pair_words((y2 + kk) >> 1u);
            let yq3 = window_pair_words((y3 + kk) >> 1u);
            add_products(
                acc,
                pair_values(xq0, xq1, xq2, xq3, 0u, 0u),
                pair_values(xq0, xq1, xq2, xq3, 0u, 1u),
                pair_values(xq0, xq1, xq2, xq3, 1u, 0u),
                pair_values(xq0, xq1, xq2, xq3, 1u, 1u),
                pair_values(yq0, yq1, yq2, yq3, 0u, 0u),
                pair_values(yq0, yq1, yq2, yq3, 0u, 1u),
                pair_values(yq0, yq1, yq2, yq3, 1u, 0u),
                pair_values(yq0, yq1, yq2, yq3, 1u, 1u),
            );
        } else {
            add_quad_products(
                acc,
                array<vec4<u32>, 4>(x_quad(x0 + kk), x_quad(x1 + kk), x_quad(x2 + kk), x_quad(x3 + kk)),
                array<vec4<u32>, 4>(y_quad(y0 + kk), y_quad(y1 + kk), y_quad(y2 + kk), y_quad(y3 + kk)),
            );
        }
    }
}

// acc += the products of 4 k values (f32): x[i] the quad of this lane's kernel row i (X's line
// 4l + i), y[j] that of its kernel column j, k ascending.
fn add_quad_products(
    acc: ptr<function, array<vec4<f32>, 32>>,
    x: array<vec4<u32>, 4>,
    y: array<vec4<u32>, 4>,
) {
    add_products(
        acc,
        word_values(x[0], x[1], x[2], x[3], 0u),
        word_values(x[0], x[1], x[2], x[3], 1u),
        word_values(x[0], x[1], x[2], x[3], 2u),
        word_values(x[0], x[1], x[2], x[3], 3u),
        word_values(y[0], y[1], y[2], y[3], 0u),
        word_values(y[0], y[1], y[2], y[3], 1u),
        word_values(y[0], y[1], y[2], y[3], 2u),
        word_values(y[0], y[1], y[2], y[3], 3u),
    );
}

@compute @workgroup_size(8)
fn gemm_window_quads(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    // Kernel rows and columns, X's and Y's offsets and line strides (all in elements).
    let rows = select(p.m, p.n, TRANSPOSED);
    let cols = select(p.n, p.m, TRANSPOSED);
    let x_off = select(p.a_off, p.b_off, TRANSPOSED);
    let x_ls = select(p.a_rs, p.b_cs, TRANSPOSED);
    let y_off = select(p.b_off, p.a_off, TRANSPOSED);
    let y_ls = select(p.b_cs, p.a_rs, TRANSPOSED);
    let row0 = wid.y * 32u;
    let col = wid.x * 32u + 4u * lane;
    // Out-of-range lines read the last valid one (results not stored), so every lane takes
    // part in every broadcast.
    let x0 = x_off + min(row0 + 4u * lane, rows - 1u) * x_ls;
    let x1 = x_off + min(row0 + 4u * lane + 1u, rows - 1u) * x_ls;
    let x2 = x_off + min(row0 + 4u * lane + 2u, rows - 1u) * x_ls;
    let x3 = x_off + min(row0 + 4u * lane + 3u, rows - 1u) * x_ls;
    let y0 = y_off + min(col, cols - 1u) * y_ls;
    let y1 = y_off + min(col + 1u, cols - 1u) * y_ls;
    let y2 = y_off + min(col + 2u, cols - 1u) * y_ls;
    let y3 = y_off + min(col + 3u, cols - 1u) * y_ls;
    var acc: array<vec4<f32>, 32>;
    multiply_tile(&acc, x0, x1, x2, x3, y0, y1, y2, y3);
    store_results(row0, col, &acc);
}

// gemm_window_quads_sweep (TRANSPOSED and SWEEP, f32; flag STEP_FORWARD or STEP_BACKWARD):
// p.steps fused Elman steps of a chunk in one dispatch, each as gemm_window_quads's step
// with A's and B's roles in the tile swapped: kernel rows are H's units (X: W_hh's lines,
// or its transposed copy's backward, all of it in the one window; with SWEEP_STORAGE, where
// it does not fit one, from its storage buffer), kernel
// columns the batch's sequences (Y: h[t] or da[t + 1], read through C's words), C stored
// transposed (Cᵀ = Bᵀ·Aᵀ). Step s is the product whose offsets (A's, C's, the inputs' and
// aux's) are the first step's plus s·step_shift (wrapping: backward steps move down by
// B·H). A workgroup owns 32 sequences for every step and loops over H's 32-unit tiles, so
// each lane reads as Y only the rows of its own 4 sequences, which it stored itself the
// step before: no barrier, no workgroup waiting for another, and lavapipe's cost of a
// dispatch (tens of microseconds, mostly waking its threads) is paid once a sweep.
// (Lanes past B read the last sequence's row, written by another lane; their sums are not
// stored.) Dispatch: (ceil(B / 32), 1, 1).
@compute @workgroup_size(8)
fn gemm_window_quads_sweep(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let col = wid.x * 32u + 4u * lane;
    for (var s = 0u; s < p.steps; s++) {
        step_offset = s * p.step_shift;
        let y_off = p.a_off + step_offset;
        let y0 = y_off + min(col, p.m - 1u) * p.a_rs;
        let y1 = y_off + min(col + 1u, p.m - 1u) * p.a_rs;
        let y2 = y_off + min(col + 2u, p.m - 1u) * p.a_rs;
        let y3 = y_off + min(col + 3u, p.m - 1u) * p.a_rs;
        for (var row0 = 0u; row0 < p.n; row0 += 32u) {
            let x0 = p.b_off + min(row0 + 4u * lane, p.n - 1u) * p.b_cs;
            let x1 = p.b_off + min(row0 + 4u * lane + 1u, p.n - 1u) * p.b_cs;
            let x2 = p.b_off + min(row0 + 4u * lane + 2u, p.n - 1u) * p.b_cs;
            let x3 = p.b_off + min(row0 + 4u * lane + 3u, p.n - 1u) * p.b_cs;
            var acc: array<vec4<f32>, 32>;
            multiply_tile(&acc, x0, x1, x2, x3, y0, y1, y2, y3);
            store_tile_columns(row0, col, &acc);
        }
    }
}

// gemm_outer_quads' 4 consecutive values of A (`from_y` false) or B at element `at`
// (a multiple of 4): two words of f16 pairs where that operand is f16, else one vec4.
fn outer_values(at: u32, from_y: bool) -> vec4<f32> {
    if (PACKED_PAIRS || select(X_PAIRS, Y_PAIRS, from_y)) {
        var w: vec2<u32>;
        if (from_y) {
            w = y_pairs[at >> 2u];
        } else {
            w = x_pairs[at >> 2u];
        }
        return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
    }
    if (from_y) {
        return quad_f32s(y_quads[at >> 2u]);
    }
    return quad_f32s(x_quads[at >> 2u]);
}

// CONTINUE: the tile's sums so far, C's rows row0 .. row0 + 31 at this lane's columns col ..
// col + 3 (0 past M or N, where nothing is stored). A loop that loads each row into the
// back of the tile and moves the others up (constant indices only, as store_tile).
fn continued_tile(row0: u32, col: u32) -> array<vec4<f32>, 32> {
    var tile: array<vec4<f32>, 32>;
    for (var r = 0u; r < 32u; r++) {
        for (var i = 0u; i < 31u; i++) {
            tile[i] = tile[i + 1u];
        }
        var sums = vec4<f32>(0.0);
        if (row0 + r < p.m && col < p.n) {
            let at = p.c_off + (row0 + r) * p.c_rs + col;
            sums = quad_f32s(c_words[at >> 2u]);
        }
        tile[31] = sums;
    }
    return tile;
}

@compute @workgroup_size(8)
fn gemm_outer_quads(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let row0 = wid.y * 32u;
    let col = wid.x * 32u + 4u * lane;
    // This lane's 4 rows of A and columns of B at k = 0 (past M or N: values not stored).
    let a0 = p.a_off + row0 + 4u * lane;
    let b0 = p.b_off + col;
    // A_ROWS: the starts of this lane's 4 rows of A (past M: the last row, not stored).
    let r0 = p.a_off + min(row0 + 4u * lane, p.m - 1u) * p.a_rs;
    let r1 = p.a_off + min(row0 + 4u * lane + 1u, p.m - 1u) * p.a_rs;
    let r2 = p.a_off + min(row0 + 4u * lane + 2u, p.m - 1u) * p.a_rs;
    let r3 = p.a_off + min(row0 + 4u * lane + 3u, p.m - 1u) * p.a_rs;
    var acc: array<vec4<f32>, 32>;
    if ((p.flags & CONTINUE) != 0u) {
        acc = continued_tile(row0, col);
    }
    for (var kk = 0u; kk < p.k; kk += 4u) {
        var x0: vec4<f32>;
        var x1: vec4<f32>;
        var x2: vec4<f32>;
        var x3: vec4<f32>;
        if (A_ROWS) {
            let q0 = quad_bits(x_quads[(r0 + kk) >> 2u]);
            let q1 = quad_bits(x_quads[(r1 + kk) >> 2u]);
            let q2 = quad_bits(x_quads[(r2 + kk) >> 2u]);
            let q3 = quad_bits(x_quads[(r3 + kk) >> 2u]);
            x0 = word_values(q0, q1, q2, q3, 0u);
            x1 = word_values(q0, q1, q2, q3, 1u);
            x2 = word_values(q0, q1, q2, q3, 2u);
            x3 = word_values(q0, q1, q2, q3, 3u);
        } else {
            x0 = outer_values(a0 + (kk + 0u) * p.a_cs, false);
            x1 = outer_values(a0 + (kk + 1u) * p.a_cs, false);
            x2 = outer_values(a0 + (kk + 2u) * p.a_cs, false);
            x3 = outer_values(a0 + (kk + 3u) * p.a_cs, false);
        }
        let y0 = outer_values(b0 + (kk + 0u) * p.b_rs, true);
        let y1 = outer_values(b0 + (kk + 1u) * p.b_rs, true);
        let y2 = outer_values(b0 + (kk + 2u) * p.b_rs, true);
        let y3 = outer_values(b0 + (kk + 3u) * p.b_rs, true);
        add_products(&acc, x0, x1, x2, x3, y0, y1, y2, y3);
    }
    store_results(row0, col, &acc);
}

// gemm_outer_narrow: gemm_outer_quads' product (A along m, B along n: dYᵀ·X, f32) where C has
// at most 8 columns (a weight gradient over few input features: W2's dW_ih, 128x8x12800).
// There the 32x32 tile would leave 6 of 8 lanes' columns past N; here lane l owns C's rows
// row0 + 4l .. row0 + 4l + 3 and every column. Per 4 k a lane loads its own 4 values of A at
// each k, and one quad of B's 4 x 8 block (k + l / 2, columns 4 (l % 2) .. + 3), which reach
// every lane by subgroupBroadcast: lavapipe loads even an address that every lane shares
// lane by lane, so B's 8 values a k loaded by each lane ran 2x slower (BENCHMARKS.md, "at
// most 8 columns"). Same sums in the same order (k ascending from zero, or from C's values
// with CONTINUE; biases last) as gemm_outer_quads: the same bits. Rows past M compute with
// whatever A holds there and store nothing; so do columns past N.
// Dispatch: (1, ceil(M / 32), 1).
@compute @workgroup_size(8)
fn gemm_outer_narrow(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let row0 = wid.y * 32u + 4u * lane;
    let a0 = p.a_off + row0;
    // B's columns 4 .. 7 where N has them.
    let wide = p.n > 4u;
    // acc[2r + h]: row row0 + r, columns 4h .. 4h + 3.
    var acc: array<vec4<f32>, 8>;
    if ((p.flags & CONTINUE) != 0u) {
        acc[0] = continued_quad(row0, 0u);
        acc[1] = continued_quad(row0, 4u);
        acc[2] = continued_quad(row0 + 1u, 0u);
        acc[3] = continued_quad(row0 + 1u, 4u);
        acc[4] = continued_quad(row0 + 2u, 0u);
        acc[5] = continued_quad(row0 + 2u, 4u);
        acc[6] = continued_quad(row0 + 3u, 0u);
        acc[7] = continued_quad(row0 + 3u, 4u);
    }
    // This lane's quad of B's 4 x 8 block at each kk: row kk + lane / 2, columns 4 (lane % 2)
    // .. + 3 (N <= 4: the first 4 again, unused, so no lane reads past B's last row).
    let b_lane = p.b_off + (lane / 2u) * p.b_rs + select(0u, 4u * (lane % 2u), wide);
    for (var kk = 0u; kk < p.k; kk += 4u) {
        let y = outer_values(b_lane + kk * p.b_rs, true);
        // k = kk + j: B's quads from lanes 2j and 2j + 1 (a lane index must be a constant).
        add_narrow_products(
            &acc,
            outer_values(a0 + (kk + 0u) * p.a_cs, false),
            subgroupBroadcast(y, 0u),
            subgroupBroadcast(y, 1u),
        );
        add_narrow_products(
            &acc,
            outer_values(a0 + (kk + 1u) * p.a_cs, false),
            subgroupBroadcast(y, 2u),
            subgroupBroadcast(y, 3u),
        );
        add_narrow_products(
            &acc,
            outer_values(a0 + (kk + 2u) * p.a_cs, false),
            subgroupBroadcast(y, 4u),
            subgroupBroadcast(y, 5u),
        );
        add_narrow_products(
            &acc,
            outer_values(a0 + (kk + 3u) * p.a_cs, false),
            subgroupBroadcast(y, 6u),
            subgroupBroadcast(y, 7u),
        );
    }
    store_narrow_quad(row0, 0u, acc[0]);
    store_narrow_quad(row0, 4u, acc[1]);
    store_narrow_quad(row0 + 1u, 0u, acc[2]);
    store_narrow_quad(row0 + 1u, 4u, acc[3]);
    store_narrow_quad(row0 + 2u, 0u, acc[4]);
    store_narrow_quad(row0 + 2u, 4u, acc[5]);
    store_narrow_quad(row0 + 3u, 0u, acc[6]);
    store_narrow_quad(row0 + 3u, 4u, acc[7]);
}

// gemm_outer_narrow: acc[2r + h] += x[r] · y_h (this lane's 4 rows of A at one k times B's
// 8 columns there).
fn add_narrow_products(
    acc: ptr<function, array<vec4<f32>, 8>>,
    x: vec4<f32>,
    y0: vec4<f32>,
    y1: vec4<f32>,
) {
    (*acc)[0] = (*acc)[0] + x.x * y0;
    (*acc)[1] = (*acc)[1] + x.x * y1;
    (*acc)[2] = (*acc)[2] + x.y * y0;
    (*acc)[3] = (*acc)[3] + x.y * y1;
    (*acc)[4] = (*acc)[4] + x.z * y0;
    (*acc)[5] = (*acc)[5] + x.z * y1;
    (*acc)[6] = (*acc)[6] + x.w * y0;
    (*acc)[7] = (*acc)[7] + x.w * y1;
}

// gemm_outer_narrow with CONTINUE: C[row, n0 .. n0 + 3] (QUAD_STORE: N a multiple of 4), 0
// where that quad is past M or N.
fn continued_quad(row: u32, n0: u32) -> vec4<f32> {
    if (row >= p.m || n0 >= p.n) {
        return vec4<f32>(0.0);
    }
    return quad_f32s(c_words[(p.c_off + row * p.c_rs + n0) >> 2u]);
}

// gemm_outer_narrow's store of C[row, n0 .. n0 + 3] = v (+ biases) (+ C): one word where
// QUAD_STORE applies, else value by value (nothing past M or N).
fn store_narrow_quad(row: u32, n0: u32, v: vec4<f32>) {
    if (row >= p.m || n0 >= p.n) {
        return;
    }
    let b1 = column_biases(n0, 1u);
    let b2 = column_biases(n0, 2u);
    if ((p.flags & QUAD_STORE) != 0u) {
        store_words(row, n0, v, b1, b2);
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        store(row, n0 + j, v[j], b1[j], b2[j]);
    }
}

// ---- The gated cells' sweeps (LSTM and GRU, f32): RecurrenceKernel::GemmSweep and
// GemmSweepLongs for gated cells (`ops::gated_sweep`). A chunk's steps in one dispatch, a
// workgroup per 32 sequences looping over the steps, as gemm_window_quads_sweep does for the
// Elman cell: lane l owns sequences col .. col + 3 (col = 32·workgroup + 4l). Each step's
// recurrent product is multiply_tile's, 32 kernel rows at a time (X: W_hh's lines forward,
// the lines of its transposed copy [H, G·H] backward, from storage; Y: this lane's own
// sequences' rows of h[t] forward, of da[t + 1] (LSTM) or dhh[t + 1] (GRU) backward, through
// C's words); the tile's sums go to this lane's rows of `gate_sums`, from which the same lane
// then runs the cell math (gated_cell_math.wgsl) of those units for its sequences, 4 units a
// time, storing what the next step's product reads as words through C's words again. Every
// value a lane reads as Y or from gate_sums it wrote itself, through the same binding (no
// barrier, no workgroup waiting for another), and the sums are those of the GEMM-based steps
// (k ascending from zero, b_hh added last): the same bits as `Gemm(WindowQuads)` and the
// per-step kernels. Lanes past B compute with the last sequence's rows and store nothing.
// Needs H a multiple of 4 and W_hh's offset too (the host checks).
// Bindings: 0 p; 9 W_hh (forward) or its copy (backward); 3 bias (b_hh; backward: any
// read-only buffer, not read); 14 C's words (forward hs, backward the LSTM's da or the GRU's
// dhh); 15 gate_sums ([B, G·H] forward, [B, H] backward); the cells' buffers as declared
// below (forward 16-18; backward 19-23).
// Dispatch: (ceil(B / 32), 1, 1).

// @include gated_cell_math.wgsl

// Set by the host: the cell an LSTM (4 gates), else a GRU (3): each pipeline compiles one
// cell's code.
override GATED_LSTM: bool = true;

fn cell_gates() -> u32 {
    return select(3u, 4u, GATED_LSTM);
}

// The step sums, and the cells' buffers as storage words (4 units of one gate or state).
@group(0) @binding(15) var<storage, read_write> gate_sums: array<vec4<f32>>;
// Forward: pre [T, B, G·H], cs [T + 1, B, H] (LSTM; any other read-write buffer for a GRU),
// cache [T, B, 4H].
@group(0) @binding(16) var<storage, read> pre_words: array<quad_word>;
@group(0) @binding(17) var<storage, read_write> cs_words: array<quad_word>;
@group(0) @binding(18) var<storage, read_write> cache_words: array<quad_word>;
// Backward: the state the cell's backward reads (LSTM cs, GRU hs), cache, dh_out [T, B, H],
// da [T, B, G·H] (a GRU's; any other read-write buffer for an LSTM, whose da is C's words)
// and dstate [T, B, H].
@group(0) @binding(19) var<storage, read> state_words_in: array<quad_word>;
@group(0) @binding(20) var<storage, read> cache_words_in: array<quad_word>;
@group(0) @binding(21) var<storage, read> dh_out_words: array<quad_word>;
@group(0) @binding(22) var<storage, read_write> da_words: array<quad_word>;
@group(0) @binding(23) var<storage, read_write> dstate_words: array<quad_word>;

// Word w of pre, of the backward's state and of its cache, as 4 values; 4 values as a word.
fn pre_word(w: u32) -> vec4<f32> {
    return quad_f32s(pre_words[w]);
}

fn state_word_in(w: u32) -> vec4<f32> {
    return quad_f32s(state_words_in[w]);
}

fn cache_word_in(w: u32) -> vec4<f32> {
    return quad_f32s(cache_words_in[w]);
}

// Component i of each of 4 vectors: from 4 gates' words of 4 units, unit i's 4 gates; from 4
// units' 4 gates, gate i's word of the 4 units.
fn components(v: array<vec4<f32>, 4>, i: u32) -> vec4<f32> {
    return vec4<f32>(v[0][i], v[1][i], v[2][i], v[3][i]);
}

// The starts of this lane's 4 sequences' rows of a [B, width] block at element `at`;
// sequences past B read the last one's (their results are not stored).
fn own_rows(at: u32, col: u32, width: u32) -> vec4<u32> {
    let last = p.cell_batch - 1u;
    return vec4<u32>(
        at + min(col, last) * width,
        at + min(col + 1u, last) * width,
        at + min(col + 2u, last) * width,
        at + min(col + 3u, last) * width,
    );
}

// The starts of this lane's 4 kernel rows' lines (rows row0 + 4l .. + 3 of `rows`, past them
// the last one's) in X at element `at`, lines `width` apart.
fn own_lines(at: u32, row0: u32, lane: u32, rows: u32, width: u32) -> vec4<u32> {
    let last = rows - 1u;
    let r = row0 + 4u * lane;
    return vec4<u32>(
        at + min(r, last) * width,
        at + min(r + 1u, last) * width,
        at + min(r + 2u, last) * width,
        at + min(r + 3u, last) * width,
    );
}

// The tile's sums (kernel rows r < live, live a multiple of 4) into gate_sums: row r of this
// lane's sequence col + j at element (col + j)·width + first + r, plus b_hh[bias_at + r] where
// `with_bias` (after the sum, as the GEMM's store adds it). Four rows a word, in a loop that
// takes them from the front of a copy of the tile (constant indices, as store_tile).
fn store_gate_sums(
    first: u32,
    width: u32,
    col: u32,
    live: u32,
    bias_at: u32,
    with_bias: bool,
    acc: ptr<function, array<vec4<f32>, 32>>,
) {
    var tile = *acc;
    for (var r = 0u; r < live; r += 4u) {
        var b = vec4<f32>(0.0);
        if (with_bias) {
            b = bias_quad(bias_at + r);
        }
        let w = (first + r) >> 2u;
        let words = width >> 2u;
        if (col < p.cell_batch) {
            gate_sums[col * words + w] = vec4<f32>(tile[0].x, tile[1].x, tile[2].x, tile[3].x) + b;
        }
        if (col + 1u < p.cell_batch) {
            gate_sums[(col + 1u) * words + w] = vec4<f32>(tile[0].y, tile[1].y, tile[2].y, tile[3].y) + b;
        }
        if (col + 2u < p.cell_batch) {
            gate_sums[(col + 2u) * words + w] = vec4<f32>(tile[0].z, tile[1].z, tile[2].z, tile[3].z) + b;
        }
        if (col + 3u < p.cell_batch) {
            gate_sums[(col + 3u) * words + w] = vec4<f32>(tile[0].w, tile[1].w, tile[2].w, tile[3].w) + b;
        }
        for (var i = 0u; i < 28u; i++) {
            tile[i] = tile[i + 4u];
        }
    }
}

// acc = the products over all of K (p.k) of X's lines from x (W_hh's or its copy's, in
// storage: this lane's 4 kernel rows) and Y's from y (this lane's 4 sequences, through C's
// words), 4 k values a load, k ascending: multiply_tile's sums.
fn gated_multiply_tile(acc: ptr<function, array<vec4<f32>, 32>>, x: vec4<u32>, y: vec4<u32>) {
    for (var kk = 0u; kk < p.k; kk += 4u) {
        add_quad_products(
            acc,
            array<vec4<u32>, 4>(
                quad_bits(x_quads[(x.x + kk) >> 2u]),
                quad_bits(x_quads[(x.y + kk) >> 2u]),
                quad_bits(x_quads[(x.z + kk) >> 2u]),
                quad_bits(x_quads[(x.w + kk) >> 2u]),
            ),
            array<vec4<u32>, 4>(
                quad_bits(c_words[(y.x + kk) >> 2u]),
                quad_bits(c_words[(y.y + kk) >> 2u]),
                quad_bits(c_words[(y.z + kk) >> 2u]),
                quad_bits(c_words[(y.w + kk) >> 2u]),
            ),
        );
    }
}

// The forward cell of sequence b, units u .. u + 3 (u a multiple of 4) at step t: its inputs
// and outputs 4 units a word (each gate's pre-activations and sums, the states, the cache).
fn gated_cells_forward(t: u32, b: u32, u: u32) {
    let h = p.cell_hidden;
    let gh = cell_gates() * h;
    let bh = p.cell_batch * h;
    let row = t * p.cell_batch + b;
    let hw = h >> 2u;
    // Gate g's words: pre-activations from x, recurrent sums; then the states' and cache's.
    var pre4: array<vec4<f32>, 4>;
    var sums4: array<vec4<f32>, 4>;
    for (var g = 0u; g < cell_gates(); g++) {
        pre4[g] = pre_word(((row * gh + u) >> 2u) + g * hw);
        sums4[g] = gate_sums[((b * gh + u) >> 2u) + g * hw];
    }
    let at = (t * bh + b * h + u) >> 2u;
    let next = at + (bh >> 2u);
    var cache4: array<vec4<f32>, 4>;
    var h4: vec4<f32>;
    if (GATED_LSTM) {
        let c_prev = quad_f32s(cs_words[at]);
        var c4: vec4<f32>;
        for (var q = 0u; q < 4u; q++) {
            let step = lstm_forward(components(pre4, q), components(sums4, q), c_prev[q]);
            cache4[q] = step.gates;
            c4[q] = step.c;
            h4[q] = step.h;
        }
        cs_words[next] = f32s_word(c4);
    } else {
        let h_prev = quad_f32s(c_words[at]);
        for (var q = 0u; q < 4u; q++) {
            let step = gru_forward(components(pre4, q), components(sums4, q), h_prev[q]);
            cache4[q] = step.cache;
            h4[q] = step.h;
        }
    }
    c_words[next] = f32s_word(h4);
    let cw = (row * 4u * h + u) >> 2u;
    for (var g = 0u; g < 4u; g++) {
        cache_words[cw + g * hw] = f32s_word(components(cache4, g));
    }
}

// The backward cell of sequence b, units u .. u + 3 at step t (before the chunk's last, so a
// gradient always comes back from step t + 1), given rec, their sums
// Σ_q dgates[t + 1, b, q]·W_hh[q, u ..]: inputs and outputs 4 units a word; what the next
// step's product reads (LSTM da, GRU dhh) through C's words.
fn gated_cells_backward(t: u32, b: u32, u: u32, rec: vec4<f32>) {
    let h = p.cell_hidden;
    let gh = cell_gates() * h;
    let bh = p.cell_batch * h;
    let row = t * p.cell_batch + b;
    let hw = h >> 2u;
    let at = (t * bh + b * h + u) >> 2u;
    let next = at + (bh >> 2u);
    let cw = (row * 4u * h + u) >> 2u;
    var cache4: array<vec4<f32>, 4>;
    for (var g = 0u; g < 4u; g++) {
        cache4[g] = cache_word_in(cw + g * hw);
    }
    // f (LSTM) or z (GRU) of step t + 1: gate 1 of the next row's cache.
    let gate1_next = cache_word_in(cw + (p.cell_batch * h) + hw);
    let dh = quad_f32s(dh_out_words[at]) + rec;
    let carried_next = quad_f32s(dstate_words[next]);
    let dw = (row * gh + u) >> 2u;
    var dhh4: array<vec4<f32>, 4>;
    if (GATED_LSTM) {
        let carried = carried_next * gate1_next;
        let c_prev = state_word_in(at);
        let c = state_word_in(next);
        var dc: vec4<f32>;
        for (var q = 0u; q < 4u; q++) {
            let grad = lstm_backward(dh[q], carried[q], components(cache4, q), c_prev[q], c[q]);
            dc[q] = grad.dc;
            dhh4[q] = grad.da;
        }
        dstate_words[at] = f32s_word(dc);
    } else {
        let d = dh + carried_next * gate1_next;
        dstate_words[at] = f32s_word(d);
        let h_prev = state_word_in(at);
        var da4: array<vec4<f32>, 4>;
        for (var q = 0u; q < 4u; q++) {
            let grad = gru_backward(d[q], components(cache4, q), h_prev[q]);
            da4[q] = grad.da;
            dhh4[q] = grad.dhh;
        }
        for (var g = 0u; g < 3u; g++) {
            da_words[dw + g * hw] = f32s_word(components(da4, g));
        }
    }
    for (var g = 0u; g < cell_gates(); g++) {
        c_words[dw + g * hw] = f32s_word(components(dhh4, g));
    }
}

// Forward, steps t = cell_t0 .. cell_t0 + steps - 1: per 32 units u0 .. u0 + 31, the G gate
// blocks' products (K = H) into gate_sums [B, G·H] with b_hh, then the cell's forward for
// those units, h[t + 1] stored 4 units a word. p.k = H, p.b_off: W_hh's offset.
@compute @workgroup_size(8)
fn gated_quads_sweep_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let col = wid.x * 32u + 4u * lane;
    let h = p.cell_hidden;
    let gh = cell_gates() * h;
    let bh = p.cell_batch * h;
    for (var s = 0u; s < p.steps; s++) {
        let t = p.cell_t0 + s;
        let y = own_rows(t * bh, col, h);
        for (var u0 = 0u; u0 < h; u0 += 32u) {
            let live = min(32u, h - u0);
            for (var g = 0u; g < cell_gates(); g++) {
                let x = own_lines(p.b_off + g * h * h, u0, lane, h, h);
                var acc: array<vec4<f32>, 32>;
                gated_multiply_tile(&acc, x, y);
                store_gate_sums(g * h + u0, gh, col, live, p.bias_off + g * h + u0, true, &acc);
            }
            for (var j = 0u; j < 4u; j++) {
                if (col + j >= p.cell_batch) {
                    break;
                }
                for (var u = u0; u < u0 + live; u += 4u) {
                    gated_cells_forward(t, col + j, u);
                }
            }
        }
    }
}

// Backward, steps t = cell_t0 down to cell_t0 - steps + 1 (each before the chunk's last):
// per 32 units, the product dgates[t + 1]·W_hh (K = G·H) into gate_sums [B, H], then the
// cell's backward for those units, what the next step's product reads (the LSTM's da[t], the
// GRU's dhh[t]) stored 4 units a word. p.k = G·H, p.b_off: the transposed copy's offset.
@compute @workgroup_size(8)
fn gated_quads_sweep_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let col = wid.x * 32u + 4u * lane;
    let h = p.cell_hidden;
    let gh = cell_gates() * h;
    for (var s = 0u; s < p.steps; s++) {
        let t = p.cell_t0 - s;
        let y = own_rows((t + 1u) * p.cell_batch * gh, col, gh);
        for (var u0 = 0u; u0 < h; u0 += 32u) {
            let live = min(32u, h - u0);
            let x = own_lines(p.b_off, u0, lane, h, gh);
            var acc: array<vec4<f32>, 32>;
            gated_multiply_tile(&acc, x, y);
            store_gate_sums(u0, h, col, live, 0u, false, &acc);
            for (var j = 0u; j < 4u; j++) {
                let b = col + j;
                if (b >= p.cell_batch) {
                    break;
                }
                for (var u = u0; u < u0 + live; u += 4u) {
                    gated_cells_backward(t, b, u, gate_sums[(b * h + u) >> 2u]);
                }
            }
        }
    }
}
