// Optimizer updates over the flat parameter buffer, with PyTorch's update rules.
// Gradients are first scaled by clip_grad_norm_'s coefficient when clipping is on:
//   coef = min(max_norm / (norm + 1e-6), 1).
//   sgd:   g += wd·p; buf = (first step ? g : momentum·buf + g); g = nesterov ? g + momentum·buf
//          : buf (when momentum > 0); p -= lr·g
//   adam:  (adamw: p *= 1 - lr·wd; adam: g += wd·p); m = lerp(m, g, 1 - β1);
//          v = β2·v + (1 - β2)·g²; p -= step_size · m / (sqrt(v) / bc2_sqrt + eps)
//          with step_size = lr / (1 - β1^step) and bc2_sqrt = sqrt(1 - β2^step) from the host.
// A step whose gradient norm or loss is not finite is skipped entirely (norm[1] = 1, set by
// norm_finalize): parameters and moments never take a non-finite value.
// Shapes: params, grads, m, v: [P] rounded up to a multiple of 4 (the padding is scratch: it
// is updated like the rest and belongs to no parameter); norm: [2] (norm, non-finite flag).
// Each invocation updates 4 consecutive parameters, read and written as one 16-byte storage
// word (on lavapipe a vec4 storage access costs far less than 4 scalar ones: BENCHMARKS.md);
// every operation is per component, so the results are those of one parameter at a time.
// The word (`quad_word`, and `quad_f32s` / `f32s_word`, appended by the host) is four
// 32-bit integers, or where the host
// compiles the Longs variant (software adapters with SHADER_INT64) two 64-bit ones, which
// lavapipe loads and stores in half as many per-lane loops; the same bits either way.
// Dispatch: 256 invocations per workgroup over ceil(P / 4) vec4s (x + y · groups.x · 256).

struct OptimParams {
    count: u32,          // P
    flags: u32,          // bit 0 clip, bit 1 nesterov, bit 2 first step, bit 3 decoupled (adamw)
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    step_size: f32,
    bc2_sqrt: f32,
    max_norm: f32,
    _pad: u32,
}

const CLIP: u32 = 1u;
const NESTEROV: u32 = 2u;
const FIRST_STEP: u32 = 4u;
const DECOUPLED: u32 = 8u;

@group(0) @binding(0) var<uniform> p: OptimParams;
@group(0) @binding(1) var<storage, read_write> params: array<quad_word>;
@group(0) @binding(2) var<storage, read> grads: array<quad_word>;
@group(0) @binding(3) var<storage, read> norm: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<quad_word>;

fn linear_index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 256u;
}

fn clipped_grad(i: u32) -> vec4<f32> {
    var g = quad_f32s(grads[i]);
    if ((p.flags & CLIP) != 0u) {
        let coef = min(p.max_norm / (norm[0] + 1e-6), 1.0);
        g = g * coef;
    }
    return g;
}

@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = linear_index(gid, groups);
    if (4u * i >= p.count || norm[1] != 0.0) {
        return;
    }
    let w = quad_f32s(params[i]);
    var g = clipped_grad(i);
    if (p.weight_decay != 0.0) {
        g = g + p.weight_decay * w;
    }
    if (p.momentum != 0.0) {
        var buf = g;
        if ((p.flags & FIRST_STEP) == 0u) {
            buf = p.momentum * quad_f32s(m[i]) + g;
        }
        m[i] = f32s_word(buf);
        if ((p.flags & NESTEROV) != 0u) {
            g = g + p.momentum * buf;
        } else {
            g = buf;
        }
    }
    params[i] = f32s_word(w - p.lr * g);
}

@group(0) @binding(5) var<storage, read_write> v: array<quad_word>;

@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = linear_index(gid, groups);
    if (4u * i >= p.count || norm[1] != 0.0) {
        return;
    }
    var w = quad_f32s(params[i]);
    var g = clipped_grad(i);
    if (p.weight_decay != 0.0) {
        if ((p.flags & DECOUPLED) != 0u) {
            w = w * (1.0 - p.lr * p.weight_decay);
        } else {
            g = g + p.weight_decay * w;
        }
    }
    let m_old = quad_f32s(m[i]);
    let m_new = m_old + (1.0 - p.beta1) * (g - m_old);
    let v_new = quad_f32s(v[i]) * p.beta2 + (1.0 - p.beta2) * g * g;
    m[i] = f32s_word(m_new);
    v[i] = f32s_word(v_new);
    let denom = sqrt(v_new) / p.bc2_sqrt + p.eps;
    params[i] = f32s_word(w - p.step_size * (m_new / denom));
}
