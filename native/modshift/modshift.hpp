// Model-shift (modshift) test: a native C++17 re-implementation of the test
// J. Coughlin wrote for Kepler DR25 (github JeffLCoughlin/Model-Shift), as run
// by TESS-ExoClass step 13 (modshift_test.py calling the `modshift` program).
//
// The public entry point is modshift::run(). It is a pure function of its
// arguments: no global state, no files, no subprocesses, so any number of runs
// may execute at the same time in different threads.
//
// See modshift.cpp for the algorithm and for the places where this code
// deliberately differs from the original program.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace modshift {

// Options of one run. The defaults reproduce the original program.
struct Options {
    // Half-width (days) of the phase window of the running median used by the
    // outlier pass (the original's fixed 0.02043981 d, about 29.4 minutes).
    double outlier_window = 0.02043981;
    // Use the original O(n^2) shift scan instead of the O(n log n) FFT
    // correlation. Same answer; for benchmarks and cross-checks only.
    bool direct_scan = false;
    // Keep the phased data and the convolved-depth curve of the full-data pass
    // (what the original wrote to its scratch files for plotting).
    bool keep_curves = false;
    // Run the four sub-passes (left/right halves, odd/even transits) in their
    // own threads next to the full pass. Same answer; for a lone process (the
    // command line) rather than for a pool that already fills the cores.
    bool parallel = false;
};

// The result of one model-shift pass over a set of points (the original's
// DO_SHIFT): all light-curve points, the left/right halves of the transits,
// or the odd/even transits.
struct ShiftPass {
    bool valid = false;          // false: no in-transit model points or none left after outlier rejection
    double depth = 0.0;          // scaled model depth at phase 0, model - baseline (negative for a dimming)
    double depsig = 0.0;         // noise of the depth: rms(out-of-event residuals) / sqrt(n_in_transit)
    double sigma_pri = 0.0, sigma_sec = 0.0, sigma_ter = 0.0, sigma_pos = 0.0;
    double phase_pri = 0.0, phase_sec = 0.0, phase_ter = 0.0, phase_pos = 0.0;  // days, in (-0.25P, 0.75P]
    double depfac_sec = 0.0;     // secondary depth in units of the primary depth
    double fred = 0.0;           // red-noise to white-noise ratio of the convolved depth
    double conv_max = 0.0, conv_min = 0.0;  // extremes of the convolved depth curve
    double rms = 0.0;            // rms of the out-of-event residuals
    std::size_t n_points = 0;    // points given to the pass
    std::size_t n_used = 0;      // points kept after the outlier pass
    std::size_t n_in_transit = 0;
    // Filled only with Options::keep_curves (full-data pass): phase-sorted.
    std::vector<double> data_phase, data_flux, data_model, conv_depth;
};

// All outputs of the original program (in its print order), plus internals.
struct Result {
    double sigma_pri = 0.0, sigma_sec = 0.0, sigma_ter = 0.0, sigma_pos = 0.0;
    double sigma_oe = 0.0;       // odd/even depth difference significance
    double dmm = 0.0;            // mean / median of the individual transit depths
    double shape = 0.0;          // max / (max - min) of the convolved depth
    double tat = 0.0;            // left/right half (transit asymmetry) significance
    double fa1 = 0.0, fa2 = 0.0; // false-alarm thresholds
    double fred = 0.0;
    double phase_pri = 0.0, phase_sec = 0.0, phase_ter = 0.0, phase_pos = 0.0;  // in periods, (-0.25, 0.75]; NaN: none
    double sec_depth = 0.0, sec_depth_err = 0.0;
    // Internals.
    bool valid = false;          // the full-data pass produced a result
    double baseflux = 0.0;       // mode of the model values
    double duration = 0.0;       // days, width of the model's transit window
    double depth = 0.0;          // scaled model depth of the full-data pass (negative: dimming)
    double depsig = 0.0;
    std::size_t n_in_transit = 0;
    std::size_t n_used = 0;
    double odd_depth = 0.0, odd_depth_err = 0.0, even_depth = 0.0, even_depth_err = 0.0;
    double left_depth = 0.0, left_depth_err = 0.0, right_depth = 0.0, right_depth_err = 0.0;
    std::size_t n_events = 0;    // individual transits measured for DMM
    ShiftPass main;              // the full-data pass (curves when requested)
};

// Runs the whole test. time, flux and model have the same length; flux and
// model are relative fluxes about zero as TEC writes them; period and epoch in
// the time unit (days). Throws std::invalid_argument on bad input.
Result run(const std::vector<double>& time, const std::vector<double>& flux,
           const std::vector<double>& model, double period, double epoch,
           const Options& options = Options());

// Sum of squared residuals S_i of the model shifted by i points against the
// phase-sorted flux, i = 0..n-1. The model differs from `base` only within
// points [start, end); outside it the residual is flux - base. Both methods
// give the same numbers: direct is the original's O(n^2) loop, otherwise an
// FFT correlation in O(n log n).
std::vector<double> shift_sums(const std::vector<double>& flux, const std::vector<double>& model,
                               double base, std::size_t start, std::size_t end, bool direct);

// Inverse complementary error function; clamps to +-100 outside (0, 2) as the original.
double inverfc(double p);

}  // namespace modshift
