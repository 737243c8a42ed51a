//! Tier 2: the f64 reference's gradients against central finite differences, on random
//! configurations (every cell, both activations, both tasks, every pool and loss, tokens and
//! features), for a chunk that continues a sequence (carried hidden/cell state and pooling
//! carry); stacked and bidirectional layers, with and without dropout between layers.

mod common;

use common::random_case_arch;
use wgrnn::data::ChunkData;
use wgrnn::dropout::Dropout;
use wgrnn::model::Cell;
use wgrnn::reference::{run_chunk_with, CarriedState};
use wgrnn::rng::Rng;

/// Every cell, one layer, forward only; then stacked and bidirectional layers of every
/// cell, some with dropout between the layers.
fn architectures() -> Vec<(u64, Cell, usize, bool, f32)> {
    let cells = [Cell::Rnn, Cell::Lstm, Cell::Gru];
    let mut out: Vec<_> = (0..24u64)
        .flat_map(|s| cells.map(|c| (s, c, 1, false, 0.0)))
        .collect();
    for seed in 0..18u64 {
        let cell = cells[seed as usize % 3];
        let (layers, bidirectional) =
            [(2, false), (1, true), (2, true), (3, false)][seed as usize % 4];
        let p = if layers > 1 && seed % 3 != 0 {
            0.3
        } else {
            0.0
        };
        out.push((seed + 50, cell, layers, bidirectional, p));
    }
    out
}

#[test]
fn reference_gradients_match_finite_differences() {
    for (seed, cell, layers, bidirectional, p) in architectures() {
        let case = random_case_arch(seed, cell, layers, bidirectional);
        let dropout = (p > 0.0).then_some((
            Dropout {
                p,
                seed: seed as u32,
            },
            3u32,
        ));
        let data = case.dataset();
        let seqs: Vec<usize> = (0..case.batch).collect();
        let params: Vec<f64> = case.params.iter().map(|&p| p as f64).collect();
        // A first chunk builds the carried state, then the checked chunk continues from it
        // (and still holds a valid step of the longest sequence). A bidirectional model
        // reads whole sequences: one chunk.
        let split = if bidirectional {
            0
        } else {
            data.max_len(&seqs) / 2
        };
        let mut carried = CarriedState::default();
        if split > 0 {
            let first = ChunkData::gather(&data, &seqs, 0..split, false);
            run_chunk_with(
                &case.config,
                &params,
                &first.chunk(false),
                &mut carried,
                false,
                dropout,
            );
        }
        let second = ChunkData::gather(&data, &seqs, split..case.steps, true);
        let chunk = second.chunk(true);
        let loss_at = |p: &[f64]| {
            run_chunk_with(
                &case.config,
                p,
                &chunk,
                &mut carried.clone(),
                false,
                dropout,
            )
            .loss
            .expect("loss")
        };
        let grads = run_chunk_with(
            &case.config,
            &params,
            &chunk,
            &mut carried.clone(),
            true,
            dropout,
        )
        .grads
        .expect("grads");

        let mut rng = Rng::new(seed);
        let picks: Vec<usize> = if params.len() <= 80 {
            (0..params.len()).collect()
        } else {
            (0..80).map(|_| rng.below(params.len())).collect()
        };
        let h = 1e-6;
        for &i in &picks {
            let mut plus = params.clone();
            plus[i] += h;
            let mut minus = params.clone();
            minus[i] -= h;
            let fd = (loss_at(&plus) - loss_at(&minus)) / (2.0 * h);
            let err = (fd - grads[i]).abs();
            assert!(
                err <= 1e-6 + 1e-4 * grads[i].abs(),
                "seed {seed} ({:?}, dropout {p}): d loss / d param[{i}]: analytic {} vs finite difference {fd} (error {err:.3e})",
                case.config,
                grads[i]
            );
        }
    }
}

#[test]
fn reference_loss_is_pytorch_mean_reduction() {
    use wgrnn::engine::StepTargets;
    use wgrnn::model::{Loss, OutputActivation};
    use wgrnn::reference::loss_and_grad;
    // Two rows, three classes: CE mean over rows, computed by hand.
    let y = [1.0, 2.0, 0.5, -1.0, 0.0, 3.0];
    let (l, _) = loss_and_grad(
        Loss::CrossEntropy,
        OutputActivation::Softmax,
        &y,
        2,
        3,
        &StepTargets::Classes(&[1, 0]),
        None,
    );
    let row = |r: &[f64], k: usize| r.iter().map(|v| v.exp()).sum::<f64>().ln() - r[k];
    let want = (row(&y[..3], 1) + row(&y[3..], 0)) / 2.0;
    assert!((l - want).abs() < 1e-12, "{l} vs {want}");
    // MSE mean over all elements, with a ReLU output.
    let (l, _) = loss_and_grad(
        Loss::Mse,
        OutputActivation::Relu,
        &y,
        2,
        3,
        &StepTargets::Values(&[0.0, 1.0, 1.0, 0.0, 0.0, 1.0]),
        None,
    );
    let want = (1.0 + 1.0 + 0.25 + 0.0 + 0.0 + 4.0) / 6.0;
    assert!((l - want).abs() < 1e-12, "{l} vs {want}");
    // A masked row counts in neither the sum nor the count.
    let (l, dy) = loss_and_grad(
        Loss::CrossEntropy,
        OutputActivation::Softmax,
        &y,
        2,
        3,
        &StepTargets::Classes(&[1, 0]),
        Some(&[1.0, 0.0]),
    );
    assert!((l - row(&y[..3], 1)).abs() < 1e-12, "{l}");
    assert!(dy[3..].iter().all(|&d| d == 0.0), "{dy:?}");
}
