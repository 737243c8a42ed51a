// Fixed-order reductions (no atomics: the same inputs give the same bits).
//   loss_sum:        loss_log[slot] = inv_count · sum_r row_loss[r]          one workgroup
//                    (inv_count from chunk_info[0], f32 bits: it changes per chunk)
//   column_sum:      grads[dst_off + n] (and grads[dst2_off + n]) = sum_r src[r, n]
//                    src: [R, N], rows src_stride apart; one invocation per column, rows in
//                    order
//   column_partials: grads[s · N + n] = sum of src[r, n] over slice s's rows
//                    [s · slice_rows, (s + 1) · slice_rows), in order; invocation (n, s).
//                    On GPUs a long R is summed in S slices this way, then column_sum adds
//                    the S partial rows in order (one invocation per column would run a
//                    chain of R dependent loads: 95 ms for R = 262,144 on an H200)
//   square_partials: partials[i] = sum over the vec4s j ≡ i (mod G), j ascending, of
//                    (g₀² + g₁²) + (g₂² + g₃²) for gradients 4j .. 4j + 3 (those past
//                    `count` as 0): one partial per invocation, 16 bytes a load, no
//                    barrier (lavapipe switches a workgroup's subgroups at every barrier)
//                    dispatch exactly G / 256 workgroups (G = `columns` partials)
//   column_sum_quads: column_sum (slice_rows = 0) or column_partials (slice_rows > 0) for
//                    N a multiple of 4 on software adapters: invocation (q, s) sums columns
//                    4q .. 4q + 3, each row's 4 values one storage word, rows in the same
//                    order as those kernels (the same bits); workgroups of 8 invocations
//                    (one lavapipe subgroup: 32 columns), so a few hundred columns still make
//                    enough workgroups for every thread
// The 16-byte storage words (`quad_word`, appended by the host) are four 32-bit integers, or
// in the Longs pipelines (software adapters with SHADER_INT64) two 64-bit ones, which lavapipe
// loads in half as many per-lane loops.
//   norm_finalize:   norm[0] = sqrt(sum_g partials[g]); norm[1] = 1 when the norm or this
//                    chunk's loss (loss_log[slot]) is not finite, else 0 (the optimizer
//                    then skips the step); norm_log[slot] = norm[0]       one workgroup

struct ReduceParams {
    count: u32,      // rows (loss_sum, column_sum) or parameter count (square_partials)
    columns: u32,    // N (column_sum), G partials (square_partials, norm_finalize)
    dst_off: u32,
    dst2_off: u32,   // 0xffffffff: no second destination
    src_stride: u32, // column sums: distance between the source's rows (>= columns)
    slot: u32,       // loss_sum: where in loss_log to write (set per chunk)
    slice_rows: u32, // column_partials: rows per slice
    _pad1: u32,
}

const NO_DST2: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: ReduceParams;

var<workgroup> scratch: array<f32, 256>;

// Sums scratch[0..256] in a fixed tree order; the result is in scratch[0].
fn tree_sum(lane: u32) {
    for (var stride = 128u; stride > 0u; stride = stride / 2u) {
        workgroupBarrier();
        if (lane < stride) {
            scratch[lane] = scratch[lane] + scratch[lane + stride];
        }
    }
    workgroupBarrier();
}

// ---- loss_sum: bindings 1 (row_loss), 2 (loss_log), 3 (chunk_info)
@group(0) @binding(1) var<storage, read> row_loss: array<f32>;
@group(0) @binding(2) var<storage, read_write> loss_log: array<f32>;
@group(0) @binding(3) var<storage, read> chunk_info: array<u32>;

@compute @workgroup_size(256)
fn loss_sum(@builtin(local_invocation_index) lane: u32) {
    var s = 0.0;
    for (var r = lane; r < p.count; r += 256u) {
        s = s + row_loss[r];
    }
    scratch[lane] = s;
    tree_sum(lane);
    if (lane == 0u) {
        loss_log[p.slot] = scratch[0] * bitcast<f32>(chunk_info[0]);
    }
}

// ---- column_sum: bindings 1 (src), 2 (grads)
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;

@compute @workgroup_size(256)
fn column_sum(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x;
    if (n >= p.columns) {
        return;
    }
    var s = 0.0;
    for (var r = 0u; r < p.count; r++) {
        s = s + src[r * p.src_stride + n];
    }
    grads[p.dst_off + n] = s;
    if (p.dst2_off != NO_DST2) {
        grads[p.dst2_off + n] = s;
    }
}

// ---- column_partials: bindings 1 (src), 2 (partials [S, N], written through `grads`)
@compute @workgroup_size(256)
fn column_partials(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = gid.x;
    let s = gid.y;
    if (n >= p.columns) {
        return;
    }
    let begin = s * p.slice_rows;
    let end = min(begin + p.slice_rows, p.count);
    var sum = 0.0;
    for (var r = begin; r < end; r++) {
        sum = sum + src[r * p.src_stride + n];
    }
    grads[s * p.columns + n] = sum;
}

// ---- column_sum_quads: bindings 1 (src, [R, N / 4] words), 2 (grads: the sums, or the
// partial rows [S, N] with slices). Dispatch: (ceil(N / 32), S, 1).
@group(0) @binding(1) var<storage, read> src_words: array<quad_word>;

@compute @workgroup_size(8)
fn column_sum_quads(@builtin(global_invocation_id) gid: vec3<u32>) {
    let quads = p.columns / 4u;
    let q = gid.x;
    if (q >= quads) {
        return;
    }
    var begin = 0u;
    var end = p.count;
    if (p.slice_rows != 0u) {
        begin = gid.y * p.slice_rows;
        end = min(begin + p.slice_rows, p.count);
    }
    var sum = vec4<f32>(0.0);
    let stride = p.src_stride / 4u;
    var r = begin;
    // 4 rows' loads issued before their additions (in row order: the same bits), so that
    // 4 rows' cache lines are in flight at once.
    for (; r + 4u <= end; r += 4u) {
        let at = r * stride + q;
        let v0 = quad_f32s(src_words[at]);
        let v1 = quad_f32s(src_words[at + stride]);
        let v2 = quad_f32s(src_words[at + 2u * stride]);
        let v3 = quad_f32s(src_words[at + 3u * stride]);
        sum = sum + v0;
        sum = sum + v1;
        sum = sum + v2;
        sum = sum + v3;
    }
    for (; r < end; r++) {
        sum = sum + quad_f32s(src_words[r * stride + q]);
    }
    for (var j = 0u; j < 4u; j++) {
        let n = 4u * q + j;
        if (p.slice_rows != 0u) {
            grads[gid.y * p.columns + n] = sum[j];
        } else {
            grads[p.dst_off + n] = sum[j];
            if (p.dst2_off != NO_DST2) {
                grads[p.dst2_off + n] = sum[j];
            }
        }
    }
}

// ---- square_partials: bindings 1 (grads, [ceil(count / 4)] words), 2 (partials [G])
@group(0) @binding(1) var<storage, read> grads_in: array<quad_word>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

@compute @workgroup_size(256)
fn square_partials(@builtin(global_invocation_id) gid: vec3<u32>) {
    let quads = (p.count + 3u) / 4u;
    var s = 0.0;
    for (var j = gid.x; j < quads; j += p.columns) {
        var g = quad_f32s(grads_in[j]);
        if (4u * j + 4u > p.count) {
            // The last vec4 runs past the parameters: its padding counts as 0.
            let at = vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u);
            g = select(vec4<f32>(0.0), g, at < vec4<u32>(p.count));
        }
        let q = g * g;
        s = s + ((q.x + q.y) + (q.z + q.w));
    }
    partials[gid.x] = s;
}

// ---- norm_finalize: bindings 1 (partials), 2 (norm), 3 (norm_log), 4 (loss_log)
@group(0) @binding(1) var<storage, read> partials_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> norm: array<f32>;
@group(0) @binding(3) var<storage, read_write> norm_log: array<f32>;
@group(0) @binding(4) var<storage, read> loss_log_in: array<f32>;

// Infinity or NaN: all exponent bits set (WGSL has no isnan/isinf, and x != x may be folded).
fn non_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

@compute @workgroup_size(256)
fn norm_finalize(@builtin(local_invocation_index) lane: u32) {
    var s = 0.0;
    for (var g = lane; g < p.columns; g += 256u) {
        s = s + partials_in[g];
    }
    scratch[lane] = s;
    tree_sum(lane);
    if (lane == 0u) {
        let n = sqrt(scratch[0]);
        norm[0] = n;
        norm[1] = select(0.0, 1.0, non_finite(n) || non_finite(loss_log_in[p.slot]));
        norm_log[p.slot] = n;
    }
}
