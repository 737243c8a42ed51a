// Element-type and layout conversions, each value stored in its buffer's type.
//   convert_elements:   dst[offset + i] = src[offset + i] for i < count. Used by --precision
//                       f16 to refresh the f16 copy of the weights from the f32 master weights
//                       at the start of every chunk (round to nearest even; values past f16's
//                       range become infinities, which the non-finite check then reports).
//                       Shapes: src, dst: [offset + count] at least.
//   transpose_elements: dst[c·rows + r] = src[offset + r·cols + c] for r < rows, c < cols
//                       (count = rows·cols): src [rows, cols] at offset, dst [cols, rows] at 0.
//                       A copy of W_hh for the GEMMs that read it along k with unit stride.
// Dispatch: 256 invocations per workgroup, spread over x and y (index = x + y ·
// num_workgroups.x · 256).

struct CastParams {
    count: u32,
    offset: u32,
    rows: u32,  // transpose_elements only
    cols: u32,  // transpose_elements only
}

@group(0) @binding(0) var<uniform> p: CastParams;
@group(0) @binding(1) var<storage, read> src: array<src_t>;
@group(0) @binding(2) var<storage, read_write> dst: array<dst_t>;

@compute @workgroup_size(256)
fn convert_elements(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    if (i >= p.count) {
        return;
    }
    dst[p.offset + i] = dst_t(f32(src[p.offset + i]));
}

@compute @workgroup_size(256)
fn transpose_elements(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    if (i >= p.count) {
        return;
    }
    let c = i / p.rows;
    let r = i % p.rows;
    dst[i] = dst_t(f32(src[p.offset + r * p.cols + c]));
}
