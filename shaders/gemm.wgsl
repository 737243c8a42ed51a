// Strided matrix product, the workhorse of every non-recurrent product:
//   C[m, n] = sum_k A(m, k) * B(k, n)  (+ bias[n]) (+ bias2[n])  (+ C[m, n] if ACCUMULATE)
// with A(m, k) = a[a_off + m * a_rs + k * a_cs] and B(k, n) = b[b_off + k * b_rs + n * b_cs],
// so one kernel covers X·Wᵀ, dY·W and dYᵀ·X without transposed copies.
// C is row-major with row stride c_rs: C[m, n] = c[c_off + m * c_rs + n].
// Each invocation owns a 4x8 block of C (4 rows, 8 columns: 12 loads per 32 multiply-adds);
// a workgroup of 8x8 invocations owns a 32-row x 64-column tile.
// Sums run over k in ascending order: results are deterministic.
// Bindings: 1 A, 2 B, 3 bias, 4 C, 5 aux (the fused Elman steps' h[t + 1], below).
// Dispatch: (ceil(N / 64), ceil(M / 32), 1).
//
// Split-K (k_slice > 0), for products with a long K and a small M×N (the weight gradients,
// K = T·B rows), which would otherwise occupy too few workgroups of a GPU: workgroup z sums
// k in [z·k_slice, (z+1)·k_slice) and stores the raw partial sum to c[c_off + z·M·N + m·N + n]
// (a scratch buffer [S, M, N]); `gemm_split_reduce` then adds the S partials in slice order
// (deterministic) plus the biases into C. Dispatch: (ceil(N / 64), ceil(M / 32), S).

// @include gemm_common.wgsl

@group(0) @binding(0) var<uniform> p: GemmParams;
@group(0) @binding(1) var<storage, read> a: array<a_t>;
@group(0) @binding(2) var<storage, read> b: array<b_t>;
@group(0) @binding(3) var<storage, read> bias: array<bias_t>;
@group(0) @binding(4) var<storage, read_write> c: array<c_t>;
// STEP_BACKWARD's h[t + 1] (any read-only buffer where unused).
@group(0) @binding(5) var<storage, read> aux: array<aux_t>;

// Fused Elman steps, as in gemm_subgroup.wgsl (see there): with A_FROM_C the product reads
// its A rows through the C binding, and the flags STEP_FORWARD / STEP_BACKWARD (with RELU)
// make the store finish the step the way `rnn_step_combine_*` does.
override A_FROM_C: bool = false;

fn read_a(i: u32) -> f32 {
    if (A_FROM_C) {
        return f32(c[i]);
    }
    return f32(a[i]);
}

// The k values [begin, end) that split-K slice z sums (all of K without a split).
fn slice_k_range(z: u32) -> vec2<u32> {
    if (p.k_slice == 0u) {
        return vec2<u32>(0u, p.k);
    }
    let begin = z * p.k_slice;
    return vec2<u32>(begin, min(begin + p.k_slice, p.k));
}

@compute @workgroup_size(8, 8)
fn gemm(@builtin(global_invocation_id) gid: vec3<u32>) {
    let k_range = slice_k_range(gid.z);
    let k_begin = k_range.x;
    let k_end = k_range.y;
    let m0 = gid.y * 4u;
    let n0 = gid.x * 8u;
    if (m0 >= p.m || n0 >= p.n) {
        return;
    }
    // Clamp the block's rows and columns to the matrix; out-of-range lanes reuse the last
    // valid row/column (their results are discarded) so the inner loop has no branches.
    var row: array<u32, 4>;
    var col: array<u32, 8>;
    for (var i = 0u; i < 4u; i++) {
        row[i] = p.a_off + min(m0 + i, p.m - 1u) * p.a_rs;
    }
    for (var j = 0u; j < 8u; j++) {
        col[j] = p.b_off + min(n0 + j, p.n - 1u) * p.b_cs;
    }
    var acc: array<array<f32, 8>, 4>;
    for (var kk = k_begin; kk < k_end; kk++) {
        var av: array<f32, 4>;
        var bv: array<f32, 8>;
        for (var i = 0u; i < 4u; i++) {
            av[i] = read_a(row[i] + kk * p.a_cs);
        }
        for (var j = 0u; j < 8u; j++) {
            bv[j] = f32(b[col[j] + kk * p.b_rs]);
        }
        for (var i = 0u; i < 4u; i++) {
            for (var j = 0u; j < 8u; j++) {
                acc[i][j] = acc[i][j] + av[i] * bv[j];
            }
        }
    }
    // The block's outputs in range, row by row, as a loop that takes each value from the
    // front of the block and moves the rest up (constant indices only, so the accumulators
    // stay out of memory): store_c's code is compiled once instead of 32 times, which on
    // lavapipe takes seconds off the kernel's compile time (BENCHMARKS.md, "stores as
    // loops").
    let rows = min(4u, p.m - m0);
    let cols = min(8u, p.n - n0);
    for (var e = 0u; e < 8u * rows; e++) {
        let j = e % 8u;
        if (j < cols) {
            store_c(m0 + e / 8u, n0 + j, gid.z, acc[0][0]);
        }
        for (var q = 0u; q < 31u; q++) {
            acc[q / 8u][q % 8u] = acc[(q + 1u) / 8u][(q + 1u) % 8u];
        }
    }
}

// ---- split-K reduction: C[m, n] = Σ_s partials[s, m, n] (+ bias[n]) (+ bias2[n]) (+ C[m, n]),
// one invocation per element, index = x + y · num_workgroups.x · 256.
// Bindings: 1 partials [S, M, N], 2 bias, 3 C.
@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read> bias_r: array<bias_r_t>;
@group(0) @binding(3) var<storage, read_write> c_r: array<c_r_t>;

@compute @workgroup_size(256)
fn gemm_split_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = gid.x + gid.y * groups.x * 256u;
    let mn = p.m * p.n;
    if (e >= mn) {
        return;
    }
    let m = e / p.n;
    let n = e % p.n;
    var v = 0.0;
    for (var s = 0u; s < p.slices; s++) {
        v = v + partials[s * mn + e];
    }
    if ((p.flags & ADD_BIAS) != 0u) {
        v = v + f32(bias_r[p.bias_off + n]);
    }
    if ((p.flags & ADD_BIAS2) != 0u) {
        v = v + f32(bias_r[p.bias2_off + n]);
    }
    let at = p.c_off + m * p.c_rs + n;
    if ((p.flags & ACCUMULATE) != 0u) {
        v = f32(c_r[at]) + v;
    }
    c_r[at] = c_r_t(v);
}

// ---- Workgroup-tiled variant for GPUs (same parameters, bindings and results, split-K
// included): a workgroup of 16x16 invocations owns a 64x64 tile of C and steps through K
// 16 at a time, staging A's and B's slabs in workgroup memory as vec4s, k-major ([k][m / 4]
// and [k][n / 4], rows padded to 17 vec4s so the staging stores spread over the banks).
// Invocation (tx, ty) computes the 4x4 block of rows 4·ty + i and columns 4·tx + j: per k,
// two 16-byte reads of workgroup memory for 16 multiply-adds, into four named vec4
// accumulators (an indexed accumulator array ran from memory on the H200: 10x slower).
// The tile for mid-sized products, where the 128x128 tiles below leave the GPU idle (the
// recurrence's per-step products at a small batch). Software-pipelined: each invocation
// loads its share of the next slab into registers before multiplying out the current one,
// so the loads' latency overlaps the multiply-adds. Sums still run over k in ascending
// order. Dispatch: (ceil(N / 64), ceil(M / 64), S).
// Software adapters run the register-blocked kernel above (barriers and workgroup memory
// cost more than they save there); GPUs choose among the kernels by measurement.

const TILE_K: u32 = 16u;
const TILE_ROW: u32 = 17u; // vec4s per k row of a slab: 16 + 1 of padding
var<workgroup> a_tile: array<vec4<f32>, 272>; // [TILE_K][TILE_ROW]: A(m_base + m, k0 + k)
var<workgroup> b_tile: array<vec4<f32>, 272>; // [TILE_K][TILE_ROW]: B(k0 + k, n_base + n)

@compute @workgroup_size(16, 16)
fn gemm_tiled(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let k_range = slice_k_range(wid.z);
    let k_begin = k_range.x;
    let k_end = k_range.y;
    let m_base = wid.y * 64u;
    let n_base = wid.x * 64u;
    // Loads walk each operand's unit-stride direction (coalesced), whichever it is.
    let a_along_k = p.a_cs == 1u;
    let b_along_k = p.b_cs != 1u;
    var c0 = vec4<f32>(); var c1 = vec4<f32>(); var c2 = vec4<f32>(); var c3 = vec4<f32>();
    // Software pipelining: the next slab's values are loaded into registers (four of A, four
    // of B per invocation) while the current slab is multiplied out of workgroup memory.
    var pa0 = a_slab_value(lane, 64u, m_base, k_begin, k_end, a_along_k);
    var pa1 = a_slab_value(lane + 256u, 64u, m_base, k_begin, k_end, a_along_k);
    var pa2 = a_slab_value(lane + 512u, 64u, m_base, k_begin, k_end, a_along_k);
    var pa3 = a_slab_value(lane + 768u, 64u, m_base, k_begin, k_end, a_along_k);
    var pb0 = b_slab_value(lane, 64u, n_base, k_begin, k_end, b_along_k);
    var pb1 = b_slab_value(lane + 256u, 64u, n_base, k_begin, k_end, b_along_k);
    var pb2 = b_slab_value(lane + 512u, 64u, n_base, k_begin, k_end, b_along_k);
    var pb3 = b_slab_value(lane + 768u, 64u, n_base, k_begin, k_end, b_along_k);
    for (var k0 = k_begin; k0 < k_end; k0 += TILE_K) {
        put_a_tile(lane, pa0, a_along_k);
        put_a_tile(lane + 256u, pa1, a_along_k);
        put_a_tile(lane + 512u, pa2, a_along_k);
        put_a_tile(lane + 768u, pa3, a_along_k);
        put_b_tile(lane, pb0, b_along_k);
        put_b_tile(lane + 256u, pb1, b_along_k);
        put_b_tile(lane + 512u, pb2, b_along_k);
        put_b_tile(lane + 768u, pb3, b_along_k);
        workgroupBarrier();
        // The next slab (zeros past k_end, never stored).
        let k1 = k0 + TILE_K;
        pa0 = a_slab_value(lane, 64u, m_base, k1, k_end, a_along_k);
        pa1 = a_slab_value(lane + 256u, 64u, m_base, k1, k_end, a_along_k);
        pa2 = a_slab_value(lane + 512u, 64u, m_base, k1, k_end, a_along_k);
        pa3 = a_slab_value(lane + 768u, 64u, m_base, k1, k_end, a_along_k);
        pb0 = b_slab_value(lane, 64u, n_base, k1, k_end, b_along_k);
        pb1 = b_slab_value(lane + 256u, 64u, n_base, k1, k_end, b_along_k);
        pb2 = b_slab_value(lane + 512u, 64u, n_base, k1, k_end, b_along_k);
        pb3 = b_slab_value(lane + 768u, 64u, n_base, k1, k_end, b_along_k);
        for (var kk = 0u; kk < TILE_K; kk++) {
            let av = a_tile[kk * TILE_ROW + lid.y];
            let bv = b_tile[kk * TILE_ROW + lid.x];
            c0 = c0 + av.x * bv;
            c1 = c1 + av.y * bv;
            c2 = c2 + av.z * bv;
            c3 = c3 + av.w * bv;
        }
        workgroupBarrier();
    }
    let r0 = m_base + 4u * lid.y;
    let n0 = n_base + 4u * lid.x;
    store_run(r0, n0, wid.z, c0);
    store_run(r0 + 1u, n0, wid.z, c1);
    store_run(r0 + 2u, n0, wid.z, c2);
    store_run(r0 + 3u, n0, wid.z, c3);
}

// Stores row m's 4-column run of a tile block, columns n0 + j (j < 4) inside C.
fn store_run(m: u32, n0: u32, z: u32, v: vec4<f32>) {
    if (m >= p.m) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        if (n0 + j < p.n) {
            store_c(m, n0 + j, z, v[j]);
        }
    }
}

// Staging slot `idx` of a slab `width` rows (A) or columns (B) wide and TILE_K deep: its
// (row or column, k) inside the slab. Consecutive slots walk the operand's unit-stride
// direction: along k when `along_k`, else along the rows or columns.
fn slab_slot(idx: u32, width: u32, along_k: bool) -> vec2<u32> {
    return select(vec2<u32>(idx % width, idx / width), vec2<u32>(idx / TILE_K, idx % TILE_K), along_k);
}

// A(m_base + mm, k0 + ka) for staging slot `idx` of an A slab, 0 outside the matrix or the
// K range.
fn a_slab_value(idx: u32, width: u32, m_base: u32, k0: u32, k_end: u32, along_k: bool) -> f32 {
    let at = slab_slot(idx, width, along_k);
    let gm = m_base + at.x;
    let gk = k0 + at.y;
    if (gm < p.m && gk < k_end) {
        return read_a(p.a_off + gm * p.a_rs + gk * p.a_cs);
    }
    return 0.0;
}

// B(k0 + kb, n_base + nn) for staging slot `idx` of a B slab, 0 outside.
fn b_slab_value(idx: u32, width: u32, n_base: u32, k0: u32, k_end: u32, along_k: bool) -> f32 {
    let at = slab_slot(idx, width, along_k);
    let gn = n_base + at.x;
    let gk = k0 + at.y;
    if (gn < p.n && gk < k_end) {
        return f32(b[p.b_off + gk * p.b_rs + gn * p.b_cs]);
    }
    return 0.0;
}

fn put_a_tile(idx: u32, v: f32, along_k: bool) {
    let at = slab_slot(idx, 64u, along_k);
    a_tile[at.y * TILE_ROW + at.x / 4u][at.x % 4u] = v;
}

fn put_b_tile(idx: u32, v: f32, along_k: bool) {
    let at = slab_slot(idx, 64u, along_k);
    b_tile[at.y * TILE_ROW + at.x / 4u][at.x % 4u] = v;
}

fn put_a_wide(idx: u32, v: f32, along_k: bool) {
    let at = slab_slot(idx, 128u, along_k);
    a_wide[at.y * WIDE_ROW + at.x / 4u][at.x % 4u] = v;
}

fn put_b_wide(idx: u32, v: f32, along_k: bool) {
    let at = slab_slot(idx, 128u, along_k);
    b_wide[at.y * WIDE_ROW + at.x / 4u][at.x % 4u] = v;
}

// ---- Wide-tile variant for large products on GPUs (same parameters, bindings and results,
// split-K included): a workgroup of 16x16 invocations owns a 128x128 tile of C and steps
// through K 16 at a time. The slabs are staged in workgroup memory as vec4s, k-major
// ([k][m / 4] and [k][n / 4], rows padded to 33 vec4s so the staging stores spread over the
// banks); invocation (tx, ty) computes the 8x8 block of rows 4·ty + i and 64 + 4·ty + i and
// columns 4·tx + j and 64 + 4·tx + j (i, j < 4), so each k costs it four 16-byte reads of
// workgroup memory for 64 multiply-adds (the 64x64 kernel above: two for 16).
// Sixteen named vec4 accumulators (no indexed arrays, which a compiler may put in memory).
// Every output still sums its products in ascending k with one accumulator, as above.
// Dispatch: (ceil(N / 128), ceil(M / 128), S).

const WIDE_K: u32 = 16u; // = TILE_K
const WIDE_ROW: u32 = 33u; // vec4s per k row of a slab: 32 + 1 of padding
var<workgroup> a_wide: array<vec4<f32>, 528>; // [WIDE_K][WIDE_ROW]: A(m_base + m, k0 + k)
var<workgroup> b_wide: array<vec4<f32>, 528>; // [WIDE_K][WIDE_ROW]: B(k0 + k, n_base + n)

@compute @workgroup_size(16, 16)
fn gemm_wide(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let k_range = slice_k_range(wid.z);
    let k_begin = k_range.x;
    let k_end = k_range.y;
    let m_base = wid.y * 128u;
    let n_base = wid.x * 128u;
    // Loads walk each operand's unit-stride direction (coalesced), whichever it is.
    let a_along_k = p.a_cs == 1u;
    let b_along_k = p.b_cs != 1u;
    var c00 = vec4<f32>(); var c01 = vec4<f32>(); var c10 = vec4<f32>(); var c11 = vec4<f32>();
    var c20 = vec4<f32>(); var c21 = vec4<f32>(); var c30 = vec4<f32>(); var c31 = vec4<f32>();
    var c40 = vec4<f32>(); var c41 = vec4<f32>(); var c50 = vec4<f32>(); var c51 = vec4<f32>();
    var c60 = vec4<f32>(); var c61 = vec4<f32>(); var c70 = vec4<f32>(); var c71 = vec4<f32>();
    // Software pipelining as in gemm_tiled: eight values of A and eight of B per invocation.
    var pa0 = a_slab_value(lane, 128u, m_base, k_begin, k_end, a_along_k);
    var pa1 = a_slab_value(lane + 256u, 128u, m_base, k_begin, k_end, a_along_k);
    var pa2 = a_slab_value(lane + 512u, 128u, m_base, k_begin, k_end, a_along_k);
    var pa3 = a_slab_value(lane + 768u, 128u, m_base, k_begin, k_end, a_along_k);
    var pa4 = a_slab_value(lane + 1024u, 128u, m_base, k_begin, k_end, a_along_k);
    var pa5 = a_slab_value(lane + 1280u, 128u, m_base, k_begin, k_end, a_along_k);
    var pa6 = a_slab_value(lane + 1536u, 128u, m_base, k_begin, k_end, a_along_k);
    var pa7 = a_slab_value(lane + 1792u, 128u, m_base, k_begin, k_end, a_along_k);
    var pb0 = b_slab_value(lane, 128u, n_base, k_begin, k_end, b_along_k);
    var pb1 = b_slab_value(lane + 256u, 128u, n_base, k_begin, k_end, b_along_k);
    var pb2 = b_slab_value(lane + 512u, 128u, n_base, k_begin, k_end, b_along_k);
    var pb3 = b_slab_value(lane + 768u, 128u, n_base, k_begin, k_end, b_along_k);
    var pb4 = b_slab_value(lane + 1024u, 128u, n_base, k_begin, k_end, b_along_k);
    var pb5 = b_slab_value(lane + 1280u, 128u, n_base, k_begin, k_end, b_along_k);
    var pb6 = b_slab_value(lane + 1536u, 128u, n_base, k_begin, k_end, b_along_k);
    var pb7 = b_slab_value(lane + 1792u, 128u, n_base, k_begin, k_end, b_along_k);
    for (var k0 = k_begin; k0 < k_end; k0 += WIDE_K) {
        put_a_wide(lane, pa0, a_along_k);
        put_a_wide(lane + 256u, pa1, a_along_k);
        put_a_wide(lane + 512u, pa2, a_along_k);
        put_a_wide(lane + 768u, pa3, a_along_k);
        put_a_wide(lane + 1024u, pa4, a_along_k);
        put_a_wide(lane + 1280u, pa5, a_along_k);
        put_a_wide(lane + 1536u, pa6, a_along_k);
        put_a_wide(lane + 1792u, pa7, a_along_k);
        put_b_wide(lane, pb0, b_along_k);
        put_b_wide(lane + 256u, pb1, b_along_k);
        put_b_wide(lane + 512u, pb2, b_along_k);
        put_b_wide(lane + 768u, pb3, b_along_k);
        put_b_wide(lane + 1024u, pb4, b_along_k);
        put_b_wide(lane + 1280u, pb5, b_along_k);
        put_b_wide(lane + 1536u, pb6, b_along_k);
        put_b_wide(lane + 1792u, pb7, b_along_k);
        workgroupBarrier();
        let k1 = k0 + WIDE_K;
        pa0 = a_slab_value(lane, 128u, m_base, k1, k_end, a_along_k);
        pa1 = a_slab_value(lane + 256u, 128u, m_base, k1, k_end, a_along_k);
        pa2 = a_slab_value(lane + 512u, 128u, m_base, k1, k_end, a_along_k);
        pa3 = a_slab_value(lane + 768u, 128u, m_base, k1, k_end, a_along_k);
        pa4 = a_slab_value(lane + 1024u, 128u, m_base, k1, k_end, a_along_k);
        pa5 = a_slab_value(lane + 1280u, 128u, m_base, k1, k_end, a_along_k);
        pa6 = a_slab_value(lane + 1536u, 128u, m_base, k1, k_end, a_along_k);
        pa7 = a_slab_value(lane + 1792u, 128u, m_base, k1, k_end, a_along_k);
        pb0 = b_slab_value(lane, 128u, n_base, k1, k_end, b_along_k);
        pb1 = b_slab_value(lane + 256u, 128u, n_base, k1, k_end, b_along_k);
        pb2 = b_slab_value(lane + 512u, 128u, n_base, k1, k_end, b_along_k);
        pb3 = b_slab_value(lane + 768u, 128u, n_base, k1, k_end, b_along_k);
        pb4 = b_slab_value(lane + 1024u, 128u, n_base, k1, k_end, b_along_k);
        pb5 = b_slab_value(lane + 1280u, 128u, n_base, k1, k_end, b_along_k);
        pb6 = b_slab_value(lane + 1536u, 128u, n_base, k1, k_end, b_along_k);
        pb7 = b_slab_value(lane + 1792u, 128u, n_base, k1, k_end, b_along_k);
        for (var kk = 0u; kk < WIDE_K; kk++) {
            let a0 = a_wide[kk * WIDE_ROW + lid.y];
            let a1 = a_wide[kk * WIDE_ROW + 16u + lid.y];
            let b0 = b_wide[kk * WIDE_ROW + lid.x];
            let b1 = b_wide[kk * WIDE_ROW + 16u + lid.x];
            c00 = c00 + a0.x * b0; c01 = c01 + a0.x * b1;
            c10 = c10 + a0.y * b0; c11 = c11 + a0.y * b1;
            c20 = c20 + a0.z * b0; c21 = c21 + a0.z * b1;
            c30 = c30 + a0.w * b0; c31 = c31 + a0.w * b1;
            c40 = c40 + a1.x * b0; c41 = c41 + a1.x * b1;
            c50 = c50 + a1.y * b0; c51 = c51 + a1.y * b1;
            c60 = c60 + a1.z * b0; c61 = c61 + a1.z * b1;
            c70 = c70 + a1.w * b0; c71 = c71 + a1.w * b1;
        }
        workgroupBarrier();
    }
    let r0 = m_base + 4u * lid.y;
    let r1 = m_base + 64u + 4u * lid.y;
    let n0 = n_base + 4u * lid.x;
    let n1 = n_base + 64u + 4u * lid.x;
    store_run(r0, n0, wid.z, c00);
    store_run(r0, n1, wid.z, c01);
    store_run(r0 + 1u, n0, wid.z, c10);
    store_run(r0 + 1u, n1, wid.z, c11);
    store_run(r0 + 2u, n0, wid.z, c20);
    store_run(r0 + 2u, n1, wid.z, c21);
    store_run(r0 + 3u, n0, wid.z, c30);
    store_run(r0 + 3u, n1, wid.z, c31);
    store_run(r1, n0, wid.z, c40);
    store_run(r1, n1, wid.z, c41);
    store_run(r1 + 1u, n0, wid.z, c50);
    store_run(r1 + 1u, n1, wid.z, c51);
    store_run(r1 + 2u, n0, wid.z, c60);
    store_run(r1 + 2u, n1, wid.z, c61);
    store_run(r1 + 3u, n0, wid.z, c70);
    store_run(r1 + 3u, n1, wid.z, c71);
}


// ---- The wide kernel with quad loads (GPUs; f32 operands 16 bytes a load, f16 8): the same tiles, slabs,
// per-invocation blocks and sums in the same order as `gemm_wide`, but each operand's slab is
// read as 4 consecutive values a load along its unit-stride direction, 2 loads of A and 2 of
// B per invocation per slab instead of 8 and 8 (a quarter of the load and address
// instructions). A quad read along k is spread over 4 k rows of the slab; one read along m
// (A) or n (B) is one vec4 of it.
// Conditions (checked on the host, `GemmKernel::tile_quads_apply`): along k:
// K, the slice length, the operand's offset and its stride between rows/columns multiples
// of 4; along m / n: M / N, the offset and the stride along k multiples of 4. So a quad is
// inside the matrix and the K range entirely or not at all.
// With A_FROM_C (a fused Elman step, `GemmWideQuadsStep`) A's values are read one at a time
// through C as in `gemm_wide`, and only B is read in quads.
// Bindings: as `gemm_wide`, plus 6 A and 7 B again as vec4s of their element type (f32: 16
// bytes, f16: 8; vec4 i holds elements 4i..4i+3). Dispatch: (ceil(N / 128), ceil(M / 128), S).
@group(0) @binding(6) var<storage, read> a_quads: array<vec4<aq_t>>;
@group(0) @binding(7) var<storage, read> b_quads: array<vec4<bq_t>>;

// Quad `idx` of an A slab `width` rows wide and 16 k deep (from row m_base, k0; width / 4
// quads a k row, 4 a row along k), zeros outside.
fn a_slab_quad(idx: u32, width: u32, m_base: u32, k0: u32, k_end: u32, along_k: bool) -> vec4<f32> {
    if (along_k) {
        let gm = m_base + idx / 4u;
        let gk = k0 + 4u * (idx % 4u);
        if (gm < p.m && gk < k_end) {
            return vec4<f32>(a_quads[(p.a_off + gm * p.a_rs + gk) / 4u]);
        }
    } else {
        let gm = m_base + 4u * (idx % (width / 4u));
        let gk = k0 + idx / (width / 4u);
        if (gm < p.m && gk < k_end) {
            return vec4<f32>(a_quads[(p.a_off + gk * p.a_cs + gm) / 4u]);
        }
    }
    return vec4<f32>();
}

// Quad `idx` of a B slab 16 k deep and `width` columns wide (from k0, column n_base), zeros
// outside.
fn b_slab_quad(idx: u32, width: u32, n_base: u32, k0: u32, k_end: u32, along_k: bool) -> vec4<f32> {
    if (along_k) {
        let gn = n_base + idx / 4u;
        let gk = k0 + 4u * (idx % 4u);
        if (gn < p.n && gk < k_end) {
            return vec4<f32>(b_quads[(p.b_off + gn * p.b_cs + gk) / 4u]);
        }
    } else {
        let gn = n_base + 4u * (idx % (width / 4u));
        let gk = k0 + idx / (width / 4u);
        if (gn < p.n && gk < k_end) {
            return vec4<f32>(b_quads[(p.b_off + gk * p.b_rs + gn) / 4u]);
        }
    }
    return vec4<f32>();
}

// Where value j of quad `idx` of a slab read along k goes in a staged slab of `row` vec4s a
// k row: (vec4, component) of line idx / 4 at k 4 (idx % 4) + j.
fn k_quad_slot(idx: u32, j: u32, row: u32) -> vec2<u32> {
    let line = idx / 4u;
    return vec2<u32>((4u * (idx % 4u) + j) * row + line / 4u, line % 4u);
}

// Where quad `idx` of a slab `width` lines wide read along its lines goes: one vec4.
fn line_quad_slot(idx: u32, width: u32, row: u32) -> u32 {
    return (idx / (width / 4u)) * row + idx % (width / 4u);
}

// Stores quad `idx` of a 128-wide A or B slab into `a_wide` / `b_wide` ([k][line / 4]
// vec4s), and of a 64-wide one into `a_tile` / `b_tile`.
fn put_a_wide_quad(idx: u32, v: vec4<f32>, along_k: bool) {
    if (along_k) {
        for (var j = 0u; j < 4u; j++) {
            let at = k_quad_slot(idx, j, WIDE_ROW);
            a_wide[at.x][at.y] = v[j];
        }
    } else {
        a_wide[line_quad_slot(idx, 128u, WIDE_ROW)] = v;
    }
}

fn put_b_wide_quad(idx: u32, v: vec4<f32>, along_k: bool) {
    if (along_k) {
        for (var j = 0u; j < 4u; j++) {
            let at = k_quad_slot(idx, j, WIDE_ROW);
            b_wide[at.x][at.y] = v[j];
        }
    } else {
        b_wide[line_quad_slot(idx, 128u, WIDE_ROW)] = v;
    }
}

fn put_a_tile_quad(idx: u32, v: vec4<f32>, along_k: bool) {
    if (along_k) {
        for (var j = 0u; j < 4u; j++) {
            let at = k_quad_slot(idx, j, TILE_ROW);
            a_tile[at.x][at.y] = v[j];
        }
    } else {
        a_tile[line_quad_slot(idx, 64u, TILE_ROW)] = v;
    }
}

fn put_b_tile_quad(idx: u32, v: vec4<f32>, along_k: bool) {
    if (along_k) {
        for (var j = 0u; j < 4u; j++) {
            let at = k_quad_slot(idx, j, TILE_ROW);
            b_tile[at.x][at.y] = v[j];
        }
    } else {
        b_tile[line_quad_slot(idx, 64u, TILE_ROW)] = v;
    }
}

// An invocation's share of a 128-row A slab (16 k deep, from k0): its two quads, or with
// A_FROM_C (A read through C, value by value) its eight values (slots lane + 256·i, as 2
// vec4s). `gemm_wide_quads` and `gemm_tall_quads` load the next slab's share this way while
// multiplying out the current one, then stage it in `a_wide`.
struct WideAShare {
    q0: vec4<f32>,
    q1: vec4<f32>,
    s0: vec4<f32>,
    s1: vec4<f32>,
}

fn load_wide_a(lane: u32, m_base: u32, k0: u32, k_end: u32, along_k: bool) -> WideAShare {
    var share: WideAShare;
    if (A_FROM_C) {
        share.s0 = vec4<f32>(
            a_slab_value(lane, 128u, m_base, k0, k_end, along_k),
            a_slab_value(lane + 256u, 128u, m_base, k0, k_end, along_k),
            a_slab_value(lane + 512u, 128u, m_base, k0, k_end, along_k),
            a_slab_value(lane + 768u, 128u, m_base, k0, k_end, along_k),
        );
        share.s1 = vec4<f32>(
            a_slab_value(lane + 1024u, 128u, m_base, k0, k_end, along_k),
            a_slab_value(lane + 1280u, 128u, m_base, k0, k_end, along_k),
            a_slab_value(lane + 1536u, 128u, m_base, k0, k_end, along_k),
            a_slab_value(lane + 1792u, 128u, m_base, k0, k_end, along_k),
        );
    } else {
        share.q0 = a_slab_quad(lane, 128u, m_base, k0, k_end, along_k);
        share.q1 = a_slab_quad(lane + 256u, 128u, m_base, k0, k_end, along_k);
    }
    return share;
}

fn put_wide_a(lane: u32, share: WideAShare, along_k: bool) {
    if (A_FROM_C) {
        put_a_wide(lane, share.s0.x, along_k);
        put_a_wide(lane + 256u, share.s0.y, along_k);
        put_a_wide(lane + 512u, share.s0.z, along_k);
        put_a_wide(lane + 768u, share.s0.w, along_k);
        put_a_wide(lane + 1024u, share.s1.x, along_k);
        put_a_wide(lane + 1280u, share.s1.y, along_k);
        put_a_wide(lane + 1536u, share.s1.z, along_k);
        put_a_wide(lane + 1792u, share.s1.w, along_k);
    } else {
        put_a_wide_quad(lane, share.q0, along_k);
        put_a_wide_quad(lane + 256u, share.q1, along_k);
    }
}

@compute @workgroup_size(16, 16)
fn gemm_wide_quads(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let k_range = slice_k_range(wid.z);
    let k_begin = k_range.x;
    let k_end = k_range.y;
    let m_base = wid.y * 128u;
    let n_base = wid.x * 128u;
    let a_along_k = p.a_cs == 1u;
    let b_along_k = p.b_cs != 1u;
    var c00 = vec4<f32>(); var c01 = vec4<f32>(); var c10 = vec4<f32>(); var c11 = vec4<f32>();
    var c20 = vec4<f32>(); var c21 = vec4<f32>(); var c30 = vec4<f32>(); var c31 = vec4<f32>();
    var c40 = vec4<f32>(); var c41 = vec4<f32>(); var c50 = vec4<f32>(); var c51 = vec4<f32>();
    var c60 = vec4<f32>(); var c61 = vec4<f32>(); var c70 = vec4<f32>(); var c71 = vec4<f32>();
    // Software pipelining as in gemm_wide: the next slab's share of A (`load_wide_a`) and
    // B's quads are loaded while the current slab is multiplied out.
    var pa = load_wide_a(lane, m_base, k_begin, k_end, a_along_k);
    var qb0 = b_slab_quad(lane, 128u, n_base, k_begin, k_end, b_along_k);
    var qb1 = b_slab_quad(lane + 256u, 128u, n_base, k_begin, k_end, b_along_k);
    for (var k0 = k_begin; k0 < k_end; k0 += WIDE_K) {
        put_wide_a(lane, pa, a_along_k);
        put_b_wide_quad(lane, qb0, b_along_k);
        put_b_wide_quad(lane + 256u, qb1, b_along_k);
        workgroupBarrier();
        let k1 = k0 + WIDE_K;
        pa = load_wide_a(lane, m_base, k1, k_end, a_along_k);
        qb0 = b_slab_quad(lane, 128u, n_base, k1, k_end, b_along_k);
        qb1 = b_slab_quad(lane + 256u, 128u, n_base, k1, k_end, b_along_k);
        for (var kk = 0u; kk < WIDE_K; kk++) {
            let a0 = a_wide[kk * WIDE_ROW + lid.y];
            let a1 = a_wide[kk * WIDE_ROW + 16u + lid.y];
            let b0 = b_wide[kk * WIDE_ROW + lid.x];
            let b1 = b_wide[kk * WIDE_ROW + 16u + lid.x];
            c00 = c00 + a0.x * b0; c01 = c01 + a0.x * b1;
            c10 = c10 + a0.y * b0; c11 = c11 + a0.y * b1;
            c20 = c20 + a0.z * b0; c21 = c21 + a0.z * b1;
            c30 = c30 + a0.w * b0; c31 = c31 + a0.w * b1;
            c40 = c40 + a1.x * b0; c41 = c41 + a1.x * b1;
            c50 = c50 + a1.y * b0; c51 = c51 + a1.y * b1;
            c60 = c60 + a1.z * b0; c61 = c61 + a1.z * b1;
            c70 = c70 + a1.w * b0; c71 = c71 + a1.w * b1;
        }
        workgroupBarrier();
    }
    let r0 = m_base + 4u * lid.y;
    let r1 = m_base + 64u + 4u * lid.y;
    let n0 = n_base + 4u * lid.x;
    let n1 = n_base + 64u + 4u * lid.x;
    store_run(r0, n0, wid.z, c00);
    store_run(r0, n1, wid.z, c01);
    store_run(r0 + 1u, n0, wid.z, c10);
    store_run(r0 + 1u, n1, wid.z, c11);
    store_run(r0 + 2u, n0, wid.z, c20);
    store_run(r0 + 2u, n1, wid.z, c21);
    store_run(r0 + 3u, n0, wid.z, c30);
    store_run(r0 + 3u, n1, wid.z, c31);
    store_run(r1, n0, wid.z, c40);
    store_run(r1, n1, wid.z, c41);
    store_run(r1 + 1u, n0, wid.z, c50);
    store_run(r1 + 1u, n1, wid.z, c51);
    store_run(r1 + 2u, n0, wid.z, c60);
    store_run(r1 + 2u, n1, wid.z, c61);
    store_run(r1 + 3u, n0, wid.z, c70);
    store_run(r1 + 3u, n1, wid.z, c71);
}

// ---- The 64x64 tiled kernel with 16-byte loads (`GemmTiledQuads`): `gemm_tiled`'s tiles,
// slabs, 4x4 blocks and sums in the same order, each operand's slab read as one quad per
// invocation (`a_slab_quad` / `b_slab_quad`, conditions as for `gemm_wide_quads`); with
// A_FROM_C (`GemmTiledQuadsStep`) A's four values are read one at a time through C.
// Bindings: as `gemm_wide_quads`. Dispatch: (ceil(N / 64), ceil(M / 64), S).
@compute @workgroup_size(16, 16)
fn gemm_tiled_quads(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let k_range = slice_k_range(wid.z);
    let k_begin = k_range.x;
    let k_end = k_range.y;
    let m_base = wid.y * 64u;
    let n_base = wid.x * 64u;
    let a_along_k = p.a_cs == 1u;
    let b_along_k = p.b_cs != 1u;
    var c0 = vec4<f32>(); var c1 = vec4<f32>(); var c2 = vec4<f32>(); var c3 = vec4<f32>();
    // Software pipelining as in gemm_tiled.
    var qa = vec4<f32>();
    var sa0 = 0.0; var sa1 = 0.0; var sa2 = 0.0; var sa3 = 0.0;
    if (A_FROM_C) {
        sa0 = a_slab_value(lane, 64u, m_base, k_begin, k_end, a_along_k);
        sa1 = a_slab_value(lane + 256u, 64u, m_base, k_begin, k_end, a_along_k);
        sa2 = a_slab_value(lane + 512u, 64u, m_base, k_begin, k_end, a_along_k);
        sa3 = a_slab_value(lane + 768u, 64u, m_base, k_begin, k_end, a_along_k);
    } else {
        qa = a_slab_quad(lane, 64u, m_base, k_begin, k_end, a_along_k);
    }
    var qb = b_slab_quad(lane, 64u, n_base, k_begin, k_end, b_along_k);
    for (var k0 = k_begin; k0 < k_end; k0 += TILE_K) {
        if (A_FROM_C) {
            put_a_tile(lane, sa0, a_along_k);
            put_a_tile(lane + 256u, sa1, a_along_k);
            put_a_tile(lane + 512u, sa2, a_along_k);
            put_a_tile(lane + 768u, sa3, a_along_k);
        } else {
            put_a_tile_quad(lane, qa, a_along_k);
        }
        put_b_tile_quad(lane, qb, b_along_k);
        workgroupBarrier();
        let k1 = k0 + TILE_K;
        if (A_FROM_C) {
            sa0 = a_slab_value(lane, 64u, m_base, k1, k_end, a_along_k);
            sa1 = a_slab_value(lane + 256u, 64u, m_base, k1, k_end, a_along_k);
            sa2 = a_slab_value(lane + 512u, 64u, m_base, k1, k_end, a_along_k);
            sa3 = a_slab_value(lane + 768u, 64u, m_base, k1, k_end, a_along_k);
        } else {
            qa = a_slab_quad(lane, 64u, m_base, k1, k_end, a_along_k);
        }
        qb = b_slab_quad(lane, 64u, n_base, k1, k_end, b_along_k);
        for (var kk = 0u; kk < TILE_K; kk++) {
            let av = a_tile[kk * TILE_ROW + lid.y];
            let bv = b_tile[kk * TILE_ROW + lid.x];
            c0 = c0 + av.x * bv;
            c1 = c1 + av.y * bv;
            c2 = c2 + av.z * bv;
            c3 = c3 + av.w * bv;
        }
        workgroupBarrier();
    }
    let r0 = m_base + 4u * lid.y;
    let n0 = n_base + 4u * lid.x;
    store_run(r0, n0, wid.z, c0);
    store_run(r0 + 1u, n0, wid.z, c1);
    store_run(r0 + 2u, n0, wid.z, c2);
    store_run(r0 + 3u, n0, wid.z, c3);
}

// ---- The 128x64 tile with 16-byte loads (`GemmTallQuads`): between the 64x64 and 128x128
// kernels, for the products where 128x128 tiles leave a GPU's multiprocessors idle and
// 64x64 ones read workgroup memory too often (the large-batch recurrences: B 1024-4096 rows
// of H 512-1024 columns). A workgroup of 16x16 invocations owns 128 rows x 64 columns of C
// and steps through K 16 at a time, A's slab staged as `gemm_wide_quads` stages it
// (`a_wide`), B's as `gemm_tiled_quads` does (`b_tile`); invocation (tx, ty) computes the
// 8x4 block of rows 4·ty + i and 64 + 4·ty + i, columns 4·tx + j: three 16-byte reads of
// workgroup memory a k for 32 multiply-adds, eight named vec4 accumulators. Sums in
// ascending k, one accumulator an output, as every kernel above. With A_FROM_C
// (`GemmTallQuadsStep`) A's eight values an invocation are read one at a time through C.
// Conditions and bindings as `gemm_wide_quads`. Dispatch: (ceil(N / 64), ceil(M / 128), S).
@compute @workgroup_size(16, 16)
fn gemm_tall_quads(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
) {
    let k_range = slice_k_range(wid.z);
    let k_begin = k_range.x;
    let k_end = k_range.y;
    let m_base = wid.y * 128u;
    let n_base = wid.x * 64u;
    let a_along_k = p.a_cs == 1u;
    let b_along_k = p.b_cs != 1u;
    var c0 = vec4<f32>(); var c1 = vec4<f32>(); var c2 = vec4<f32>(); var c3 = vec4<f32>();
    var c4 = vec4<f32>(); var c5 = vec4<f32>(); var c6 = vec4<f32>(); var c7 = vec4<f32>();
    // Software pipelining as in gemm_wide_quads.
    var pa = load_wide_a(lane, m_base, k_begin, k_end, a_along_k);
    var qb = b_slab_quad(lane, 64u, n_base, k_begin, k_end, b_along_k);
    for (var k0 = k_begin; k0 < k_end; k0 += WIDE_K) {
        put_wide_a(lane, pa, a_along_k);
        put_b_tile_quad(lane, qb, b_along_k);
        workgroupBarrier();
        let k1 = k0 + WIDE_K;
        pa = load_wide_a(lane, m_base, k1, k_end, a_along_k);
        qb = b_slab_quad(lane, 64u, n_base, k1, k_end, b_along_k);
        for (var kk = 0u; kk < WIDE_K; kk++) {
            let a0 = a_wide[kk * WIDE_ROW + lid.y];
            let a1 = a_wide[kk * WIDE_ROW + 16u + lid.y];
            let bv = b_tile[kk * TILE_ROW + lid.x];
            c0 = c0 + a0.x * bv;
            c1 = c1 + a0.y * bv;
            c2 = c2 + a0.z * bv;
            c3 = c3 + a0.w * bv;
            c4 = c4 + a1.x * bv;
            c5 = c5 + a1.y * bv;
            c6 = c6 + a1.z * bv;
            c7 = c7 + a1.w * bv;
        }
        workgroupBarrier();
    }
    let r0 = m_base + 4u * lid.y;
    let r1 = m_base + 64u + 4u * lid.y;
    let n0 = n_base + 4u * lid.x;
    store_run(r0, n0, wid.z, c0);
    store_run(r0 + 1u, n0, wid.z, c1);
    store_run(r0 + 2u, n0, wid.z, c2);
    store_run(r0 + 3u, n0, wid.z, c3);
    store_run(r1, n0, wid.z, c4);
    store_run(r1 + 1u, n0, wid.z, c5);
    store_run(r1 + 2u, n0, wid.z, c6);
    store_run(r1 + 3u, n0, wid.z, c7);
}
