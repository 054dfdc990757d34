// Trapezoid transit fit of TESS-ExoClass step 13 (modshift_test.py with the
// minimiser of pgmcmc.py), native: the chi-square of a supersampled trapezoid
// in phase and a bounded Nelder-Mead over several starts. Header-only (the
// bindings include it); no global state, any number of fits may run at once.
//
// The Python side (steps/tec/science/trapezoid.py) selects the fitted points
// and passes them sorted by their phase offset dt0 from the DV epoch, with
// the flux, the supersampling flag of each point and the bounds. A trial
// epoch t0 = epoch + delta shifts the transit to dt = dt0 - delta, so the
// points that can touch the transit are one contiguous band of the sorted
// offsets (found by bisection); every other point contributes its flux^2,
// known from their total. The model, the band and the chi-square are those
// of the numpy code it replaces (same numbers up to rounding).
//
// The minimiser is a line-by-line port of scipy.optimize's Nelder-Mead with
// bounds (scipy 1.17, adaptive=False): the same initial simplex (5 % steps,
// 0.00025 for zero), reflection into the bounds, clipping of every trial
// point, the xatol/fatol test, maxiter and maxfev counting, and stable
// ordering of the simplex. It therefore follows the same path as the numpy
// code did with scipy, so the fits (and the Tiers built on them) are the same.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

namespace modshift {
namespace trapezoid {

constexpr int kDim = 4;  // t0, depth, duration (hours), flat-bottom ratio
using Vec = std::array<double, kDim>;

// The fitted points: phase offsets from the DV epoch (days, ascending), flux,
// supersampling flags, and what the chi-square needs around them.
struct Problem {
    std::vector<double> time;     // BTJD of the fitted points, sorted by dt0
    std::vector<double> dt0, y;   // phase offset from the DV epoch (days, ascending), flux
    std::vector<char> fine;       // supersampled within the cadence
    double r2total = 0.0;         // sum of (y / sigma)^2 over all points
    double sigma = 1.0;           // flux error (the same for every point)
    double cadence = 0.0;         // days
    int supersample = 15;
    double epoch = 0.0, period = 0.0;
    Vec lo{}, span{};             // unit coordinates u in [0, 1] map to lo + u * span
};

// numpy's phase_offset: np.mod(t - t0, P) (floor modulo, +0 for an exact
// multiple), then minus P above P/2; the same operations, so the same bits.
inline double phase_offset(double t, double t0, double period) {
    double m = std::fmod(t - t0, period);
    if (m != 0.0) {
        if (m < 0.0) m += period;
    } else {
        m = 0.0;
    }
    return m > 0.5 * period ? m - period : m;
}

// Problem from unsorted points: sorted by their offset from the DV epoch (stable).
inline Problem make_problem(const std::vector<double>& time, const std::vector<double>& y,
                            const std::vector<char>& fine, double sigma, double cadence, int supersample,
                            double epoch, double period, const Vec& lo, const Vec& span) {
    const std::size_t n = time.size();
    if (supersample < 1 || supersample > 128) throw std::invalid_argument("supersample must be 1 to 128");
    if (y.size() != n || fine.size() != n) throw std::invalid_argument("time, y and fine must have the same length");
    if (!(period > 0.0) || !std::isfinite(period)) throw std::invalid_argument("period must be finite and > 0");
    if (!(sigma > 0.0) || !std::isfinite(sigma)) throw std::invalid_argument("sigma must be finite and > 0");
    if (!std::isfinite(epoch)) throw std::invalid_argument("epoch must be finite");
    for (std::size_t i = 0; i < n; ++i)
        if (!std::isfinite(time[i]) || !std::isfinite(y[i])) throw std::invalid_argument("non-finite time or y");
    std::vector<double> dt0(n);
    for (std::size_t i = 0; i < n; ++i) dt0[i] = phase_offset(time[i], epoch, period);
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return dt0[a] < dt0[b]; });
    Problem p;
    p.time.resize(n);
    p.dt0.resize(n);
    p.y.resize(n);
    p.fine.resize(n);
    for (std::size_t k = 0; k < n; ++k) {
        p.time[k] = time[order[k]];
        p.dt0[k] = dt0[order[k]];
        p.y[k] = y[order[k]];
        p.fine[k] = fine[order[k]];
    }
    for (std::size_t i = 0; i < n; ++i) {
        const double r = y[i] / sigma;
        p.r2total += r * r;
    }
    p.sigma = sigma;
    p.cadence = cadence;
    p.supersample = supersample;
    p.epoch = epoch;
    p.period = period;
    p.lo = lo;
    p.span = span;
    return p;
}

// Trapezoid relative flux (baseline 0) at offset x from mid-transit: numpy's
// trapezoid_profile(dt, depth, duration, flat), operation for operation
// (written as a select, which the compiler vectorises over the sub-samples).
inline double profile(double dt, double depth, double half, double flat_half, double ramp) {
    const double x = std::fabs(dt);
    const double slope = std::min(std::max((half - x) / ramp, 0.0), 1.0);
    return -depth * (x <= flat_half ? 1.0 : slope);
}

// numpy's pairwise sum of a short row (np.add.reduce over a contiguous axis:
// up to 7 values in order; 8 to 128 values in 8 interleaved partial sums,
// combined as a tree, then the remainder in order).
inline double numpy_sum(const double* a, int n) {
    if (n < 8) {
        double s = 0.0;  // numpy starts from -0.0 and adds in order
        s = -0.0;
        for (int i = 0; i < n; ++i) s += a[i];
        return s;
    }
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    int i = 8;
    for (; i < n - (n % 8); i += 8)
        for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) s += a[i];
    return s;
}

// Model at one point, as the numpy code: plain profile, or the mean over the
// supersample offsets (k - (s - 1) / 2) * (cadence / s). Sub-samples all
// beyond the transit or all on its flat bottom give the numpy values without
// evaluating each (-0.0, or the numpy mean of s copies of -depth: `bottom`).
inline double model_at(double dt, bool fine, double depth, double half, double flat_half, double ramp,
                       double bottom, const Problem& p) {
    if (!fine || !(p.cadence > 0.0) || p.supersample <= 1) return profile(dt, depth, half, flat_half, ramp);
    const int s = p.supersample;
    const double step = p.cadence / s;
    const double mid = (s - 1) / 2.0;
    const double reach = mid * step, x = std::fabs(dt);
    const double guard = 1e-9 * (p.cadence + half);  // far wider than any rounding of dt + offset
    if (x - reach > half + guard) return -0.0;
    if (x + reach < flat_half - guard) return bottom;
    double v[128];
    for (int k = 0; k < s; ++k) v[k] = profile(dt + (static_cast<double>(k) - mid) * step, depth, half, flat_half, ramp);
    return numpy_sum(v, s) / s;
}

// Chi-square at unit coordinates u: sum of ((y - model) / sigma)^2, the model
// zero except within half a duration plus a cadence of the trial epoch.
inline double chi2(const Vec& u, const Problem& p) {
    const double t0 = p.lo[0] + u[0] * p.span[0];
    const double depth = p.lo[1] + u[1] * p.span[1];
    const double d = (p.lo[2] + u[2] * p.span[2]) / 24.0;
    const double ratio = p.lo[3] + u[3] * p.span[3];
    const double half = 0.5 * d, flat_half = 0.5 * (ratio * d);
    const double ramp = std::max(half - flat_half, 1e-300);
    const double reach = 0.5 * d + p.cadence;  // nearer than this: the model is evaluated
    double bottom = -depth;  // the supersampled mean on the flat bottom, as numpy sums it
    if (p.supersample > 1 && p.cadence > 0.0) {
        double v[128];
        for (int k = 0; k < p.supersample; ++k) v[k] = -depth * 1.0;
        bottom = numpy_sum(v, p.supersample) / p.supersample;
    }
    const double delta = t0 - p.epoch;
    const double margin = 1e-9 + 1e-12 * std::fabs(p.period);  // candidates: a little wider than the band
    const std::size_t n = p.dt0.size();
    double band_r2_data = 0.0, band_r2_resid = 0.0;
    auto visit = [&](std::size_t first, std::size_t last) {
        for (std::size_t i = first; i < last; ++i) {
            // offset from the trial epoch, wrapped to (-P/2, P/2] (numpy's mod of t - t0, to rounding)
            double dt = p.dt0[i] - delta;
            if (dt > 0.5 * p.period) dt -= p.period;
            else if (dt <= -0.5 * p.period) dt += p.period;
            if (!(std::fabs(dt) < reach)) continue;
            const double m = model_at(dt, p.fine[i] != 0, depth, half, flat_half, ramp, bottom, p);
            const double r0 = p.y[i] / p.sigma, r = (p.y[i] - m) / p.sigma;
            band_r2_data += r0 * r0;
            band_r2_resid += r * r;
        }
    };
    if (2.0 * (reach + margin) >= p.period) {
        visit(0, n);  // the transit window spans the whole phase
    } else {
        // candidates |dt0 - delta - k P| < reach (+ margin) for the copies k = -1, 0, 1 of the
        // transit (disjoint; only k = 0 meets the fitted points unless T/P is large)
        for (int k = -1; k <= 1; ++k) {
            const double centre = delta + k * p.period;
            const auto first = std::lower_bound(p.dt0.begin(), p.dt0.end(), centre - reach - margin) - p.dt0.begin();
            const auto last = std::upper_bound(p.dt0.begin(), p.dt0.end(), centre + reach + margin) - p.dt0.begin();
            if (last > first) visit(static_cast<std::size_t>(first), static_cast<std::size_t>(last));
        }
    }
    return p.r2total - band_r2_data + band_r2_resid;
}

struct Options {
    double xatol = 1e-5, fatol = 1e-5;
    long maxiter = 2000, maxfev = 2000;
};

struct Result {
    Vec x{};
    double fun = std::numeric_limits<double>::infinity();
    long nfev = 0, nit = 0;
};

// scipy's bounded Nelder-Mead on [0, 1]^4 (see the file comment).
inline Result nelder_mead(const Vec& x0_in, const Problem& p, const Options& opt) {
    constexpr double rho = 1.0, chi = 2.0, psi = 0.5, sigma = 0.5;
    constexpr double nonzdelt = 0.05, zdelt = 0.00025;
    const int N = kDim;
    auto clip = [](Vec v) {
        for (double& x : v) x = std::clamp(x, 0.0, 1.0);
        return v;
    };
    const Vec x0 = clip(x0_in);
    std::array<Vec, kDim + 1> sim;
    sim[0] = x0;
    for (int k = 0; k < N; ++k) {
        Vec y = x0;
        y[k] = y[k] != 0.0 ? (1.0 + nonzdelt) * y[k] : zdelt;
        sim[k + 1] = y;
    }
    for (Vec& v : sim) {  // reflect above-bound entries into the interior, then clip
        for (double& x : v) {
            if (x > 1.0) x = 2.0 - x;
            x = std::clamp(x, 0.0, 1.0);
        }
    }
    std::array<double, kDim + 1> fsim;
    fsim.fill(std::numeric_limits<double>::infinity());
    long fcalls = 0;
    bool exhausted = false;
    auto f = [&](const Vec& v, double& out) {  // false once maxfev calls were made (scipy raises)
        if (fcalls >= opt.maxfev) {
            exhausted = true;
            return false;
        }
        ++fcalls;
        out = chi2(v, p);
        return true;
    };
    auto sort_simplex = [&]() {
        std::array<int, kDim + 1> idx;
        std::iota(idx.begin(), idx.end(), 0);
        std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return fsim[a] < fsim[b]; });
        auto s2 = sim;
        auto f2 = fsim;
        for (int i = 0; i <= N; ++i) {
            sim[i] = s2[idx[i]];
            fsim[i] = f2[idx[i]];
        }
    };
    for (int k = 0; k <= N; ++k)
        if (!f(sim[k], fsim[k])) break;
    sort_simplex();
    long iterations = 1;
    while (fcalls < opt.maxfev && iterations < opt.maxiter) {
        double xspread = 0.0, fspread = 0.0;
        for (int j = 1; j <= N; ++j) {
            for (int i = 0; i < N; ++i) xspread = std::max(xspread, std::fabs(sim[j][i] - sim[0][i]));
            fspread = std::max(fspread, std::fabs(fsim[0] - fsim[j]));
        }
        if (xspread <= opt.xatol && fspread <= opt.fatol) break;
        Vec xbar{};
        for (int j = 0; j < N; ++j)
            for (int i = 0; i < N; ++i) xbar[i] += sim[j][i];
        for (double& x : xbar) x /= N;
        auto combine = [&](double a, double b) {  // a * xbar + b * sim[-1], clipped
            Vec v;
            for (int i = 0; i < N; ++i) v[i] = a * xbar[i] + b * sim[N][i];
            return clip(v);
        };
        do {  // one iteration; `break` leaves it when maxfev runs out (scipy's exception)
            const Vec xr = combine(1.0 + rho, -rho);
            double fxr;
            if (!f(xr, fxr)) break;
            bool doshrink = false;
            if (fxr < fsim[0]) {
                const Vec xe = combine(1.0 + rho * chi, -rho * chi);
                double fxe;
                if (!f(xe, fxe)) break;
                if (fxe < fxr) {
                    sim[N] = xe;
                    fsim[N] = fxe;
                } else {
                    sim[N] = xr;
                    fsim[N] = fxr;
                }
            } else if (fxr < fsim[N - 1]) {
                sim[N] = xr;
                fsim[N] = fxr;
            } else if (fxr < fsim[N]) {  // outside contraction
                const Vec xc = combine(1.0 + psi * rho, -psi * rho);
                double fxc;
                if (!f(xc, fxc)) break;
                if (fxc <= fxr) {
                    sim[N] = xc;
                    fsim[N] = fxc;
                } else {
                    doshrink = true;
                }
            } else {  // inside contraction
                const Vec xcc = combine(1.0 - psi, psi);
                double fxcc;
                if (!f(xcc, fxcc)) break;
                if (fxcc < fsim[N]) {
                    sim[N] = xcc;
                    fsim[N] = fxcc;
                } else {
                    doshrink = true;
                }
            }
            if (doshrink) {
                for (int j = 1; j <= N; ++j) {
                    Vec v;
                    for (int i = 0; i < N; ++i) v[i] = sim[0][i] + sigma * (sim[j][i] - sim[0][i]);
                    sim[j] = clip(v);
                    if (!f(sim[j], fsim[j])) break;
                }
            }
            ++iterations;
        } while (false);
        sort_simplex();
        if (exhausted) break;
    }
    Result r;
    r.x = sim[0];
    r.fun = *std::min_element(fsim.begin(), fsim.end());
    r.nfev = fcalls;
    r.nit = iterations;
    return r;
}

// Best of the starts: the first with the lowest finite chi-square (as the
// numpy loop keeps a start only when it is strictly better).
inline Result fit(const std::vector<Vec>& starts, const Problem& p, const Options& opt) {
    Result best;
    bool found = false;
    for (const Vec& s : starts) {
        const Result r = nelder_mead(s, p, opt);
        if (std::isfinite(r.fun) && (!found || r.fun < best.fun)) {
            best = r;
            found = true;
        }
    }
    if (!found) best.fun = std::numeric_limits<double>::quiet_NaN();
    return best;
}

}  // namespace trapezoid
}  // namespace modshift
