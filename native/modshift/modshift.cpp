// Model-shift (modshift) test, native implementation for astroflow.
//
// Replaces the `modshift` program that TESS-ExoClass step 13 (modshift_test.py)
// runs once per TCE and detrending (J. Coughlin's Kepler DR25 Model-Shift,
// github JeffLCoughlin/Model-Shift, as shipped in TEC). Written from the
// published description and the behaviour of that program; the same
// algorithm in plain numpy is tests/tec/modshift_reference.py.
//
// Algorithm (one "pass", the original's DO_SHIFT, over a set of points):
//   1. Points sorted by phase in (-0.25P, 0.75P]. The model's baseline is the
//      mode of the model values; a point is in transit where the model departs
//      from it.
//   2. Scale the model to the data (least squares), reject outliers whose
//      residual minus the running median of residuals within +-0.0204 d of
//      phase exceeds sqrt(2) erfcinv(1/n) * 1.4826 MAD, scale again. The
//      running median slides a window along the phase-sorted points and keeps
//      its values ordered (ranks from one radix sort, a Fenwick tree of the
//      ranks in the window): O(n log n); the original took a fresh median of
//      every window after scanning all n points, O(n^2).
//   3. Slide the model over the data by i = 0..n-1 points (circularly) and take
//      the sum of squared residuals S_i; chi2_i = n S_i / min S. The model only
//      departs from the baseline inside the transit window W, so
//          S_i = sum (f - b)^2 + sum_W (m - b)(m + b) - 2 sum_W f[i + j] (m_j - b),
//      and the last term is a correlation, computed with an FFT (O(n log n);
//      the original summed all n terms for each of the n shifts, O(n^2)).
//   4. Primary = min chi2 within 4 transit widths of phase 0; secondary = min
//      outside; tertiary = min outside 4 widths of both; positive = max
//      outside 6 widths of both; chi2_med = median outside 2 widths (shrunk by
//      0.01 steps until 10 % of the points qualify). depsig =
//      rms(out-of-event residuals) / sqrt(N_in); sigma_X = -depth (chi2_X -
//      chi2_med) / (chi2_pri - chi2_med) / depsig; Fred = sqrt(N_in)
//      std(convolved depth) / rms.
//   The whole test runs the pass on all points, on the left and right halves
//   of the transits (TAT), on odd and even transits (period 2P), and fits the
//   model depth of each transit on its own (DMM = mean/median depth).
//
// Deliberate differences from the original program (bugs fixed, deterministic):
//   * Ties in phase (regular cadences fold onto few distinct phases) are
//     ordered by time (stable sort by time, then by phase); the original's
//     unstable sort made the answer depend on the input's text format.
//   * The transit window scan looked at every second point only (a stray
//     `i++`); here every point: tstart/tend are the phases of the first and
//     last model point of the first in-transit run in phase order.
//   * In-transit means |model - baseline| > 1e-10 everywhere (the original
//     used model != baseline in one place and |model| > 1e-10 in others).
//   * The tertiary / positive / median windows now exclude the secondary's
//     +P copy too (a misplaced parenthesis made that test always true).
//   * A pass with nothing in transit or nothing left after outlier rejection
//     is invalid and contributes depth 0 (the original reused the previous
//     pass's stale depth, error and convolved-depth array).
//   * The model scale is the closed-form least-squares value about the
//     baseline (the original searched for it to 1e-8 by steps).
//   * The depth is signed, model - baseline at phase 0 (as in TEC's copy;
//     upstream used -|model - baseline|), so a fit that flips sign shows.
//   * No fixed array sizes, no scratch files, no shell commands, no globals;
//     the epoch is moved to the last one at or before the first point in one
//     step (the original stepped back one period at a time, and never
//     forward; odd/even and the per-transit depths do not depend on it).
//   * A window start before the first point is clamped to 0 (the original read
//     before its array), and an event not found has phase NaN (the original
//     printed -1 for a missing secondary).
//   * The point "at phase 0" (model depth, shift origin) is the one nearest
//     phase 0 among the points the pass keeps (the original kept the index of
//     the one before outlier rejection, or of the next point if it was
//     rejected), and the width loop of the baseline sample stops at a width
//     factor of -1 (all points) instead of risking an endless loop.
#include "modshift.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <future>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace modshift {
namespace {

constexpr double kInTransitTolerance = 1e-10;  // |model - baseline| above this is in transit
constexpr double kDefaultHalfWidth = 0.0208333;  // days, when the model has < 2 in-transit points
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kPi = 3.14159265358979323846;

struct Point {
    double time;
    double cycle;  // fractional cycle (time - epoch) / period, in [0, 1)
    double phase;  // days, in (-0.25 P, 0.75 P]
    double flux;
    double model;
};

// Geometry shared by all passes of one run.
struct Geometry {
    double period;
    double base;    // model baseline
    double tstart;  // phase (days) of the first in-transit model point
    double tend;    // phase (days) of the last in-transit model point
    double duration;
};

bool in_transit(double model, double base) { return std::fabs(model - base) > kInTransitTolerance; }

// ---------------------------------------------------------------- statistics

// Median of v (not empty); reorders v.
double median_of(std::vector<double>& v) {
    const std::size_t h = v.size() / 2;
    std::nth_element(v.begin(), v.begin() + h, v.end());
    const double upper = v[h];
    if (v.size() % 2 == 1) return upper;
    const double lower = *std::max_element(v.begin(), v.begin() + h);
    return (lower + upper) / 2;
}

// Median absolute deviation about the median.
double mad_of(std::vector<double> v) {
    const double med = median_of(v);
    for (double& x : v) x = std::fabs(x - med);
    return median_of(v);
}

// Most frequent value; the smallest of equally frequent values.
double mode_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    double best = v.front();
    std::size_t best_count = 0;
    for (std::size_t i = 0; i < v.size();) {
        std::size_t j = i;
        while (j < v.size() && v[j] == v[i]) ++j;
        if (j - i > best_count) {
            best_count = j - i;
            best = v[i];
        }
        i = j;
    }
    return best;
}

// Least-squares factor s so that base + s (model - base) fits flux.
template <class It>
double fit_scale(It first, It last, double base) {
    double num = 0.0, den = 0.0;
    for (It p = first; p != last; ++p) {
        const double g = p->model - base;
        num += (p->flux - base) * g;
        den += g * g;
    }
    return den > 0.0 ? num / den : 1.0;
}

void scale_model(std::vector<Point>& pts, double base) {
    const double s = fit_scale(pts.begin(), pts.end(), base);
    for (Point& p : pts) p.model = base + s * (p.model - base);
}

// Indices that sort `values` ascending (equal values in index order): a
// stable LSD radix sort, 8 bits at a time, of the doubles' bit patterns mapped
// to unsigned integers of the same order. O(n), no comparisons.
std::vector<std::size_t> sorted_order(const std::vector<double>& values) {
    const std::size_t n = values.size();
    std::vector<std::uint64_t> key(n);
    for (std::size_t i = 0; i < n; ++i) {
        std::uint64_t bits;
        std::memcpy(&bits, &values[i], sizeof bits);
        key[i] = (bits >> 63) ? ~bits : bits | (std::uint64_t{1} << 63);  // negatives reversed, below positives
    }
    std::vector<std::size_t> order(n), next(n);
    std::iota(order.begin(), order.end(), 0);
    for (int shift = 0; shift < 64; shift += 8) {
        std::size_t count[257] = {0};
        for (std::size_t i = 0; i < n; ++i) ++count[((key[i] >> shift) & 0xff) + 1];
        if (*std::max_element(count + 1, count + 257) == n) continue;  // all in one bucket: nothing to do
        for (int b = 0; b < 256; ++b) count[b + 1] += count[b];
        for (std::size_t i : order) next[count[(key[i] >> shift) & 0xff]++] = i;
        order.swap(next);
    }
    return order;
}

// Running median of a window of values that enters and leaves one value at a
// time: each value has a fixed rank among all values (ties broken by index),
// and a Fenwick tree counts which ranks are in the window, so an insert, an
// erase or an order statistic costs O(log n) with no allocation (faster in
// practice than two balanced trees of the window, O(log w) with allocations).
class WindowMedian {
public:
    explicit WindowMedian(const std::vector<double>& values) : values_(values), rank_(values.size()) {
        const std::size_t n = values.size();
        sorted_ = sorted_order(values);
        for (std::size_t r = 0; r < n; ++r) rank_[sorted_[r]] = r;
        tree_.assign(n + 1, 0);
        top_ = 1;
        while (top_ * 2 <= n) top_ *= 2;
    }
    void insert(std::size_t i) { update(rank_[i] + 1, 1); ++count_; }
    void erase(std::size_t i) { update(rank_[i] + 1, -1); --count_; }
    double median() const {
        const double upper = kth(count_ / 2 + 1);
        if (count_ % 2 == 1) return upper;
        return (kth(count_ / 2) + upper) / 2;
    }

private:
    void update(std::size_t pos, int delta) {
        for (; pos < tree_.size(); pos += pos & (~pos + 1)) tree_[pos] += delta;
    }
    // Value of the k-th smallest (1-based) value in the window.
    double kth(std::size_t k) const {
        std::size_t pos = 0;
        int remaining = static_cast<int>(k);
        for (std::size_t step = top_; step > 0; step >>= 1) {
            if (pos + step < tree_.size() && tree_[pos + step] < remaining) {
                pos += step;
                remaining -= tree_[pos];
            }
        }
        return values_[sorted_[pos]];  // rank pos (0-based) is the k-th
    }
    const std::vector<double>& values_;
    std::vector<std::size_t> rank_, sorted_;
    std::vector<int> tree_;
    std::size_t top_ = 1, count_ = 0;
};

// Flags points whose residual departs from the running median of residuals
// within +-window of phase by more than `threshold`. pts sorted by phase.
std::vector<char> flag_outliers(const std::vector<Point>& pts, const std::vector<double>& resid,
                                double window, double threshold) {
    const std::size_t n = pts.size();
    std::vector<char> bad(n, 0);
    WindowMedian wm(resid);
    std::size_t lo = 0, hi = 0;  // window is [lo, hi)
    for (std::size_t i = 0; i < n; ++i) {
        while (hi < n && std::fabs(pts[i].phase - pts[hi].phase) < window) wm.insert(hi++);
        while (std::fabs(pts[i].phase - pts[lo].phase) >= window) wm.erase(lo++);
        if (std::fabs(resid[i] - wm.median()) > threshold) bad[i] = 1;
    }
    return bad;
}

// ---------------------------------------------------------------- FFT

struct Cplx {
    double re, im;
};

// Iterative radix-2 complex FFT of one power-of-two size (n >= 8).
// Twiddles are stored per stage, contiguous: for a stage of butterfly span
// 2h, entries [h, 2h) hold exp(-2 pi i k / 2h), k < h.
class Fft {
public:
    explicit Fft(std::size_t n) : n_(n), twiddle_(n) {
        // Largest stage: cos and sin of pi k / h on [0, pi/4], the rest by symmetry.
        const std::size_t h = n / 2;
        std::vector<double> c(h / 2 + 1), s(h / 2 + 1);
        for (std::size_t k = 0; k <= h / 4; ++k) {
            const double a = kPi * static_cast<double>(k) / static_cast<double>(h);
            c[k] = std::cos(a);
            s[k] = std::sin(a);
        }
        for (std::size_t k = h / 4 + 1; k <= h / 2; ++k) {
            c[k] = s[h / 2 - k];
            s[k] = c[h / 2 - k];
        }
        for (std::size_t k = 0; k < h; ++k)
            twiddle_[h + k] = k <= h / 2 ? Cplx{c[k], -s[k]} : Cplx{-c[h - k], -s[h - k]};
        // Smaller stages are subsamples of the largest.
        for (std::size_t half = 1; half < h; half <<= 1)
            for (std::size_t k = 0; k < half; ++k) twiddle_[half + k] = twiddle_[h + k * (h / half)];
    }

    void transform(std::vector<Cplx>& a, bool inverse) const {
        for (std::size_t i = 1, j = 0; i < n_; ++i) {  // bit-reversal permutation
            std::size_t bit = n_ >> 1;
            for (; j & bit; bit >>= 1) j ^= bit;
            j ^= bit;
            if (i < j) std::swap(a[i], a[j]);
        }
        for (std::size_t i = 0; i < n_; i += 2) {  // first stage: twiddle 1
            const Cplx u = a[i], v = a[i + 1];
            a[i] = {u.re + v.re, u.im + v.im};
            a[i + 1] = {u.re - v.re, u.im - v.im};
        }
        const double sign = inverse ? -1.0 : 1.0;
        for (std::size_t half = 2; half < n_; half <<= 1) {
            const Cplx* w = &twiddle_[half];
            for (std::size_t i = 0; i < n_; i += 2 * half) {
                Cplx* x = &a[i];
                Cplx* y = &a[i + half];
                for (std::size_t k = 0; k < half; ++k) {
                    const double wr = w[k].re, wi = sign * w[k].im;
                    const double tr = y[k].re * wr - y[k].im * wi;
                    const double ti = y[k].re * wi + y[k].im * wr;
                    y[k] = {x[k].re - tr, x[k].im - ti};
                    x[k] = {x[k].re + tr, x[k].im + ti};
                }
            }
        }
    }

private:
    std::size_t n_;
    std::vector<Cplx> twiddle_;
};

// c_i = sum_l h[i + l] g[l] for i < n_out, with h, g real (linear correlation).
std::vector<double> correlate(const std::vector<double>& h, const std::vector<double>& g, std::size_t n_out) {
    std::size_t size = 1;
    while (size < h.size()) size <<= 1;
    size = std::max<std::size_t>(size, 8);
    // Pack both real sequences into one complex FFT: z = h + i g.
    std::vector<Cplx> z(size, Cplx{0.0, 0.0});
    for (std::size_t k = 0; k < h.size(); ++k) z[k].re = h[k];
    for (std::size_t k = 0; k < g.size(); ++k) z[k].im = g[k];
    const Fft fft(size);
    fft.transform(z, false);
    // H_k = (Z_k + conj Z_-k)/2, G_k = (Z_k - conj Z_-k)/(2i); product H_k conj(G_k).
    std::vector<Cplx> prod(size);
    for (std::size_t k = 0; k < size; ++k) {
        const Cplx a = z[k], b = z[(size - k) & (size - 1)];
        const Cplx hk = {(a.re + b.re) / 2, (a.im - b.im) / 2};
        const Cplx gk = {(a.im + b.im) / 2, -(a.re - b.re) / 2};
        prod[k] = {hk.re * gk.re + hk.im * gk.im, hk.im * gk.re - hk.re * gk.im};
    }
    fft.transform(prod, true);
    std::vector<double> c(n_out);
    for (std::size_t i = 0; i < n_out; ++i) c[i] = prod[i].re / static_cast<double>(size);
    return c;
}

// ---------------------------------------------------------------- one pass

// Phase window test: is `ph` outside [c + w tstart, c + w tend] and its +-P copies?
bool outside(double ph, double c, double w, const Geometry& g) {
    const double lo = c + w * g.tstart, hi = c + w * g.tend;
    return (ph < lo || ph > hi) && (ph < lo + g.period || ph > hi + g.period) &&
           (ph < lo - g.period || ph > hi - g.period);
}

// One model-shift pass over phase-sorted points (ties in time order).
ShiftPass shift_pass(std::vector<Point> pts, const Geometry& geo, const Options& opt) {
    ShiftPass r;
    r.n_points = pts.size();
    const double P = geo.period, base = geo.base;
    if (pts.empty()) return r;
    if (std::none_of(pts.begin(), pts.end(), [&](const Point& p) { return in_transit(p.model, base); }))
        return r;

    // Scale, reject outliers, scale again.
    scale_model(pts, base);
    {
        std::vector<double> resid(pts.size());
        for (std::size_t i = 0; i < pts.size(); ++i) resid[i] = pts[i].flux - pts[i].model;
        const double sigma = 1.4826 * mad_of(resid);
        const double threshold = std::sqrt(2.0) * inverfc(1.0 / static_cast<double>(pts.size())) * sigma;
        const std::vector<char> bad = flag_outliers(pts, resid, opt.outlier_window, threshold);
        std::size_t m = 0;
        for (std::size_t i = 0; i < pts.size(); ++i)
            if (!bad[i]) pts[m++] = pts[i];
        pts.resize(m);
    }
    const std::size_t n = pts.size();
    r.n_used = n;
    if (n == 0) return r;
    scale_model(pts, base);

    // Point nearest phase 0 and the depth of the model there.
    std::size_t mid = 0;
    for (std::size_t i = 1; i < n; ++i)
        if (std::fabs(pts[i].phase) < std::fabs(pts[mid].phase)) mid = i;
    r.depth = pts[mid].model - base;

    // Points [start, end) span the transit: from the last point before -T/2 to
    // the first after +T/2.
    const double halfwidth = 0.5 * geo.duration;
    std::size_t start = 0, end = n;
    {
        std::size_t j = 0;
        while (j < n && !(pts[j].phase > -halfwidth)) ++j;
        start = j > 0 ? j - 1 : 0;
        while (j < n && !(std::fabs(pts[j].phase) > halfwidth)) ++j;
        end = std::max(j, start);
    }

    std::vector<double> flux(n), model(n);
    for (std::size_t i = 0; i < n; ++i) {
        flux[i] = pts[i].flux;
        model[i] = pts[i].model;
    }
    const std::vector<double> sums = shift_sums(flux, model, base, start, end, opt.direct_scan);
    const double smin = *std::min_element(sums.begin(), sums.end());
    if (!(smin > 0.0)) return r;  // data identical to the model: no noise to measure against
    std::vector<double> chi2(n);
    for (std::size_t i = 0; i < n; ++i) chi2[i] = static_cast<double>(n) * sums[i] / smin;

    std::size_t nin = 0;
    for (const Point& p : pts)
        if (p.phase > geo.tstart && p.phase < geo.tend) ++nin;
    r.n_in_transit = nin;
    if (nin == 0) return r;

    // Shift i puts the model's centre on point (i + mid) mod n.
    auto phase_of = [&](std::size_t i) { return pts[(i + mid) % n].phase; };
    constexpr std::size_t kNone = static_cast<std::size_t>(-1);

    // Primary (near phase 0) and secondary (elsewhere).
    std::size_t ipri = kNone, isec = kNone;
    for (std::size_t i = 0; i < n; ++i) {
        const double ph = phase_of(i);
        std::size_t& best = outside(ph, 0.0, 4.0, geo) ? isec : ipri;
        if (best == kNone || chi2[i] < chi2[best]) best = i;
    }
    if (ipri == kNone) return r;
    if (isec == kNone)
        for (std::size_t i = 0; i < n; ++i) {
            const double ph = phase_of(i);
            if (ph > 0.4 * P && ph < 0.6 * P && (isec == kNone || chi2[i] < chi2[isec])) isec = i;
        }
    const double ph_pri = phase_of(ipri);
    const double ph_sec = isec == kNone ? kNaN : phase_of(isec);

    // Outside both events at width factor w (a NaN secondary excludes nothing).
    auto clear_of_events = [&](std::size_t i, double w) {
        const double ph = phase_of(i);
        return outside(ph, ph_pri, w, geo) && (isec == kNone || outside(ph, ph_sec, w, geo));
    };
    std::size_t iter = kNone, ipos = kNone;
    for (std::size_t i = 0; i < n; ++i) {
        if (clear_of_events(i, 4.0) && (iter == kNone || chi2[i] < chi2[iter])) iter = i;
        if (clear_of_events(i, 6.0) && (ipos == kNone || chi2[i] > chi2[ipos])) ipos = i;
    }

    // Baseline sample: outside 2 widths of both events, narrowed until it
    // holds at least 10 % of the points.
    std::vector<std::size_t> quiet;
    for (double w = 2.0;; w -= 0.01) {
        quiet.clear();
        for (std::size_t i = 0; i < n; ++i)
            if (w < -1.0 || clear_of_events(i, w)) quiet.push_back(i);
        if (static_cast<double>(quiet.size()) >= 0.1 * static_cast<double>(n)) break;
    }
    std::vector<double> sample(quiet.size());
    for (std::size_t k = 0; k < quiet.size(); ++k) sample[k] = chi2[quiet[k]];
    const double chi2_med = median_of(sample);
    const double chi2_pri = chi2[ipri];
    const double span = chi2_pri - chi2_med;
    if (!(span != 0.0)) return r;

    const double chi2_sec = isec == kNone ? chi2_med : chi2[isec];
    const double chi2_ter = iter == kNone ? chi2_med : chi2[iter];
    const double chi2_pos = ipos == kNone ? chi2_med : chi2[ipos];

    // Noise: residual rms and the scatter of the convolved depth off the events.
    double sum_r2 = 0.0, sum_c = 0.0;
    for (std::size_t i : quiet) {
        const Point& p = pts[(i + mid) % n];
        sum_r2 += (p.flux - p.model) * (p.flux - p.model);
        sum_c += r.depth * (chi2[i] - chi2_med) / span;
    }
    const double nq = static_cast<double>(quiet.size());
    const double mean_c = sum_c / nq;
    double sum_dc2 = 0.0;
    for (std::size_t i : quiet) {
        const double d = r.depth * (chi2[i] - chi2_med) / span - mean_c;
        sum_dc2 += d * d;
    }
    r.rms = std::sqrt(sum_r2 / nq);
    if (!(r.rms > 0.0)) return r;  // no noise off the events: significances undefined
    const double sqrt_nin = std::sqrt(static_cast<double>(nin));
    r.fred = sqrt_nin * std::sqrt(sum_dc2 / nq) / r.rms;
    r.depsig = r.rms / sqrt_nin;

    r.depfac_sec = (chi2_sec - chi2_med) / span;
    auto significance = [&](double dchi2) {
        const double s = -r.depth * dchi2 / span / r.depsig;
        return std::fabs(s) < 1e-2 ? 0.0 : s;
    };
    r.sigma_pri = significance(chi2_pri - chi2_med);
    r.sigma_sec = significance(chi2_sec - chi2_med);
    r.sigma_ter = significance(chi2_ter - chi2_med);
    r.sigma_pos = significance(chi2_med - chi2_pos);
    r.phase_pri = ph_pri;
    r.phase_sec = ph_sec;
    r.phase_ter = iter == kNone ? kNaN : phase_of(iter);
    r.phase_pos = ipos == kNone ? kNaN : phase_of(ipos);

    r.conv_max = -std::numeric_limits<double>::infinity();
    r.conv_min = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < n; ++i) {
        const double c = r.depth * (chi2[i] - chi2_med) / span;
        r.conv_max = std::max(r.conv_max, c);
        r.conv_min = std::min(r.conv_min, c);
    }
    if (opt.keep_curves) {
        r.data_phase.resize(n);
        r.data_flux.resize(n);
        r.data_model.resize(n);
        r.conv_depth.resize(n);
        for (std::size_t k = 0; k < n; ++k) {
            r.data_phase[k] = pts[k].phase / P;
            r.data_flux[k] = pts[k].flux;
            r.data_model[k] = pts[k].model;
            const std::size_t i = (k + n - mid) % n;  // shift that centres the model on point k
            r.conv_depth[k] = r.depth * (chi2[i] - chi2_med) / span;
        }
    }
    r.valid = true;
    return r;
}

// Significance of the difference of two depths; 0 unless both passes worked.
double depth_difference(const ShiftPass& a, const ShiftPass& b) {
    if (!a.valid || !b.valid || a.depth == 0.0 || b.depth == 0.0) return 0.0;
    return std::fabs(a.depth - b.depth) / std::sqrt(a.depsig * a.depsig + b.depsig * b.depsig);
}

double cycle_of(double t, double epoch, double period) {
    const double x = (t - epoch) / period;
    return x - std::floor(x);
}

}  // namespace

// ---------------------------------------------------------------- public

double inverfc(double p) {
    if (p >= 2.0) return -100.0;
    if (p <= 0.0) return 100.0;
    const double q = p < 1.0 ? p : 2.0 - p;  // solve erfc(x) = q with x >= 0
    // Rational starting guess, then Halley steps on erfc(x) - q.
    const double t = std::sqrt(-2.0 * std::log(q / 2.0));
    double x = -0.70711 * ((2.30753 + t * 0.27061) / (1.0 + t * (0.99229 + t * 0.04481)) - t);
    for (int k = 0; k < 20; ++k) {
        const double err = std::erfc(x) - q;
        const double step = err / (2.0 / std::sqrt(kPi) * std::exp(-x * x) - x * err);
        x += step;
        if (std::fabs(step) <= 1e-16 * std::fabs(x)) break;
    }
    return p < 1.0 ? x : -x;
}

std::vector<double> shift_sums(const std::vector<double>& flux, const std::vector<double>& model, double base,
                               std::size_t start, std::size_t end, bool direct) {
    const std::size_t n = flux.size();
    if (model.size() != n) throw std::invalid_argument("shift_sums: flux and model differ in length");
    if (n == 0) return {};
    end = std::min(end, n);
    start = std::min(start, end);
    std::vector<double> s(n);
    if (direct) {
        // The original's loop: every shift sums all n residuals.
        std::vector<double> flat(2 * n), f2(2 * n);
        for (std::size_t k = 0; k < 2 * n; ++k) {
            f2[k] = flux[k % n];
            flat[k] = (f2[k] - base) * (f2[k] - base);
        }
        for (std::size_t i = 0; i < n; ++i) {
            double sum = 0.0;
            for (std::size_t j = 0; j < start; ++j) sum += flat[j + i];
            for (std::size_t j = start; j < end; ++j) {
                const double d = f2[j + i] - model[j];
                sum += d * d;
            }
            for (std::size_t j = end; j < n; ++j) sum += flat[j + i];
            s[i] = sum;
        }
        return s;
    }
    const std::size_t len = end - start;
    double flat_total = 0.0, window_const = 0.0;
    for (double f : flux) flat_total += (f - base) * (f - base);
    std::vector<double> g(len);
    for (std::size_t l = 0; l < len; ++l) {
        g[l] = model[start + l] - base;
        window_const += g[l] * (model[start + l] + base);
    }
    if (len == 0) return std::vector<double>(n, flat_total);
    std::vector<double> h(n + len - 1);
    for (std::size_t k = 0; k < h.size(); ++k) h[k] = flux[(start + k) % n];
    const std::vector<double> c = correlate(h, g, n);
    for (std::size_t i = 0; i < n; ++i) s[i] = flat_total + window_const - 2.0 * c[i];
    return s;
}

Result run(const std::vector<double>& time, const std::vector<double>& flux, const std::vector<double>& model,
           double period, double epoch, const Options& options) {
    const std::size_t n = time.size();
    if (flux.size() != n || model.size() != n)
        throw std::invalid_argument("time, flux and model must have the same length");
    if (n < 10) throw std::invalid_argument("need at least 10 points, got " + std::to_string(n));
    if (!std::isfinite(period) || period <= 0.0) throw std::invalid_argument("period must be finite and > 0");
    if (!std::isfinite(epoch)) throw std::invalid_argument("epoch must be finite");
    for (std::size_t i = 0; i < n; ++i)
        if (!std::isfinite(time[i]) || !std::isfinite(flux[i]) || !std::isfinite(model[i]))
            throw std::invalid_argument("non-finite time, flux or model at index " + std::to_string(i));
    if (!(options.outlier_window > 0.0)) throw std::invalid_argument("outlier_window must be > 0");

    Result res;
    const double P = period;

    // Points in time order (ties keep input order); epoch = last one at or before the data.
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return time[a] < time[b]; });
    const double t_first = time[order.front()], t_last = time[order.back()];
    double E = epoch + std::floor((t_first - epoch) / P) * P;
    while (E > t_first) E -= P;

    std::vector<Point> by_time(n);
    for (std::size_t k = 0; k < n; ++k) {
        const std::size_t i = order[k];
        Point& p = by_time[k];
        p.time = time[i];
        p.flux = flux[i];
        p.model = model[i];
        p.cycle = cycle_of(p.time, E, P);
        p.phase = P * p.cycle;
        if (p.phase > 0.75 * P) p.phase -= P;
    }
    std::vector<Point> by_phase = by_time;
    std::stable_sort(by_phase.begin(), by_phase.end(),
                     [](const Point& a, const Point& b) { return a.phase < b.phase; });

    // Baseline and the transit window of the model.
    std::vector<double> models(n);
    for (std::size_t i = 0; i < n; ++i) models[i] = by_time[i].model;
    const double base = mode_of(models);
    Geometry geo{P, base, -kDefaultHalfWidth, kDefaultHalfWidth, 0.0};
    std::size_t n_model_in = 0;
    for (const Point& p : by_phase) n_model_in += in_transit(p.model, base);
    if (n_model_in > 1) {
        std::size_t k = 0;
        while (!in_transit(by_phase[k].model, base)) ++k;
        geo.tstart = by_phase[k].phase;
        while (k + 1 < n && in_transit(by_phase[k + 1].model, base)) ++k;
        geo.tend = by_phase[k].phase;
        if (geo.tstart > 0.0) geo.tstart = -geo.tend;  // no model before phase 0
        if (geo.tend < 0.0) geo.tend = -geo.tstart;    // no model after phase 0
    }
    geo.duration = geo.tend - geo.tstart;
    res.baseflux = base;
    res.duration = geo.duration;
    std::size_t mid = 0;
    for (std::size_t i = 1; i < n; ++i)
        if (std::fabs(by_phase[i].phase) < std::fabs(by_phase[mid].phase)) mid = i;
    const double full_model_depth = std::fabs(by_phase[mid].model - base);

    // Transit asymmetry: left halves (phase in (-0.25, 0] or (0.5, 0.75]) vs
    // right halves. Odd / even transits: fold at 2P and keep half a period
    // either side of the event.
    std::vector<Point> left, right, odd, even;
    for (const Point& p : by_phase) {
        const double c = p.cycle > 0.75 ? p.cycle - 1.0 : p.cycle;
        (c <= 0.0 || c > 0.5 ? left : right).push_back(p);
        double c2 = cycle_of(p.time, E, 2.0 * P);
        if (c2 > 0.75) c2 -= 1.0;
        if (c2 < 0.25) odd.push_back(p);
        c2 = cycle_of(p.time, E - P, 2.0 * P);
        if (c2 > 0.75) c2 -= 1.0;
        if (c2 < 0.25) even.push_back(p);
    }
    // These four passes are independent of each other and of the rest; with
    // `parallel` they run in their own threads while this one does the rest.
    Options sub = options;
    sub.keep_curves = false;
    const auto policy = options.parallel ? std::launch::async : std::launch::deferred;
    auto run_pass = [&geo, sub](std::vector<Point>&& pts) { return shift_pass(std::move(pts), geo, sub); };
    auto left_job = std::async(policy, run_pass, std::move(left));
    auto right_job = std::async(policy, run_pass, std::move(right));
    auto odd_job = std::async(policy, run_pass, std::move(odd));
    auto even_job = std::async(policy, run_pass, std::move(even));

    // Depth mean-to-median: fit the model depth of each transit on its own,
    // using data within 1.5 durations of its centre.
    {
        std::vector<double> times(n);
        for (std::size_t i = 0; i < n; ++i) times[i] = by_time[i].time;
        const double half = 1.5 * geo.duration;
        std::vector<double> depths;
        for (long long k = 0;; ++k) {
            const double centre = E + static_cast<double>(k) * P;
            if (!(centre <= t_last)) break;
            const auto first = std::upper_bound(times.begin(), times.end(), centre - half) - times.begin();
            const auto last = std::lower_bound(times.begin(), times.end(), centre + half) - times.begin();
            if (last <= first) continue;
            std::size_t nin = 0;
            for (auto i = first; i < last; ++i) nin += in_transit(by_time[i].model, base);
            if (nin < 2) continue;
            depths.push_back(fit_scale(by_time.begin() + first, by_time.begin() + last, base) * full_model_depth);
        }
        res.n_events = depths.size();
        if (!depths.empty()) {
            const double mean = std::accumulate(depths.begin(), depths.end(), 0.0) / static_cast<double>(depths.size());
            const double med = median_of(depths);
            if (med != 0.0) res.dmm = mean / med;
        }
    }

    // The full pass.
    ShiftPass main = shift_pass(std::move(by_phase), geo, options);

    const ShiftPass pass_left = left_job.get(), pass_right = right_job.get();
    res.tat = depth_difference(pass_left, pass_right);
    res.left_depth = pass_left.valid ? pass_left.depth : 0.0;
    res.left_depth_err = pass_left.depsig;
    res.right_depth = pass_right.valid ? pass_right.depth : 0.0;
    res.right_depth_err = pass_right.depsig;
    const ShiftPass pass_odd = odd_job.get(), pass_even = even_job.get();
    res.sigma_oe = depth_difference(pass_odd, pass_even);
    res.odd_depth = pass_odd.valid ? pass_odd.depth : 0.0;
    res.odd_depth_err = pass_odd.depsig;
    res.even_depth = pass_even.valid ? pass_even.depth : 0.0;
    res.even_depth_err = pass_even.depsig;

    res.fa1 = std::sqrt(2.0) * inverfc(geo.duration / (P * 20000.0));
    res.fa2 = std::sqrt(2.0) * inverfc(geo.duration / P);
    res.valid = main.valid;
    res.n_in_transit = main.n_in_transit;
    res.n_used = main.n_used;
    if (main.valid) {
        res.sigma_pri = main.sigma_pri;
        res.sigma_sec = main.sigma_sec;
        res.sigma_ter = main.sigma_ter;
        res.sigma_pos = main.sigma_pos;
        res.fred = main.fred;
        res.phase_pri = main.phase_pri / P;
        res.phase_sec = main.phase_sec / P;
        res.phase_ter = main.phase_ter / P;
        res.phase_pos = main.phase_pos / P;
        res.sec_depth = -main.depfac_sec * main.depth;
        res.sec_depth_err = main.depsig;
        res.depth = main.depth;
        res.depsig = main.depsig;
        if (main.conv_max - main.conv_min != 0.0) res.shape = main.conv_max / (main.conv_max - main.conv_min);
    } else {
        res.phase_pri = res.phase_sec = res.phase_ter = res.phase_pos = kNaN;
    }
    res.main = std::move(main);
    return res;
}

}  // namespace modshift
