//! The GPU path of the long reductions, checked on any adapter: weight gradients split over
//! K (partial products, then their sum in slice order) and bias gradients summed in row
//! slices. Software adapters split little on their own (bias sums of 256 or fewer columns
//! in 2 slices), so this binary forces both through WGRNN_SPLIT_K and WGRNN_COLUMN_SLICES
//! (its own process: the variables reach no other test) and compares every chunk of random
//! models of every cell with the f64 reference.

mod common;

use common::{check_chunks_against_reference, gpu, random_case_arch};
use wgrnn::model::Cell;
use wgrnn::optim::{OptimizerConfig, OptimizerKind};

#[test]
fn split_weight_and_bias_gradients_match_reference() {
    // Slice counts that divide no chunk's rows evenly in general.
    std::env::set_var("WGRNN_SPLIT_K", "3");
    std::env::set_var("WGRNN_COLUMN_SLICES", "5");
    assert_eq!(wgrnn::ops::split_slices(true, 8, 8, 100), 3);
    assert_eq!(wgrnn::ops::column_slices(true, 100, 8), 5);
    let gpu = gpu();
    let archs = [(1, false), (2, false), (1, true)];
    for seed in 0..12u64 {
        let cell = [Cell::Rnn, Cell::Lstm, Cell::Gru][seed as usize % 3];
        let (layers, bidirectional) = archs[seed as usize / 3 % 3];
        let case = random_case_arch(seed + 700, cell, layers, bidirectional);
        let opt = OptimizerConfig::pytorch_defaults(OptimizerKind::Sgd);
        let mut engine = case.engine(&gpu, opt);
        engine.set_training(true);
        check_chunks_against_reference(&mut engine, &case, None, &format!("seed {seed}"), 1e-4);
    }
}
