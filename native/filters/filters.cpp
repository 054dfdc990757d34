// Robust filters for the CCD kernels (HETDEX bias, pixel flats, line search): module astroflow._filters.
//
// running_median: the median of every window of `window` consecutive values along the last
// axis ("valid" positions only; the caller pads for its edge mode); for an even window the upper
// of the two middle values, as scipy.ndimage.median_filter (rank window // 2).  A sorted window is kept
// and updated by one removal and one insertion per step, O(window) memory moves instead of a
// selection per output value as scipy.ndimage.median_filter does.
//
// biweight: Tukey's biweight location and midvariance-based scale along the last axis, one
// iteration from the median with the MAD as scale (astropy.stats.biweight_location /
// biweight_scale with their defaults c = 6 and c = 9), NaN values ignored.
//
// median: the median of the finite values along the last axis (np.nanmedian over many short
// rows, which numpy does through masked arrays).
//
// All run without the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

namespace py = pybind11;

namespace {

template <class T>
using Array = py::array_t<T, py::array::c_style | py::array::forcecast>;

template <class T>
py::array_t<T> running_median(Array<T> a, py::ssize_t window) {
    if (a.ndim() < 1) throw py::value_error("running_median needs at least a 1-d array");
    if (window < 1) throw py::value_error("window must be >= 1");
    const py::ssize_t n = a.shape(a.ndim() - 1);
    if (n < window) throw py::value_error("the last axis is shorter than the window");
    const py::ssize_t rows = n ? a.size() / n : 0;
    const py::ssize_t m = n - window + 1;
    std::vector<py::ssize_t> shape(a.shape(), a.shape() + a.ndim());
    shape.back() = m;
    py::array_t<T> out(shape);
    const T* src = a.data();
    T* dst = out.mutable_data();
    bool has_nan = false;
    {
        py::gil_scoped_release release;
        std::vector<T> win(static_cast<size_t>(window));
        const size_t mid = static_cast<size_t>(window / 2);
        for (py::ssize_t r = 0; r < rows && !has_nan; ++r) {
            const T* x = src + r * n;
            T* y = dst + r * m;
            for (py::ssize_t i = 0; i < n; ++i)
                if (std::isnan(x[i])) { has_nan = true; break; }
            if (has_nan) break;
            std::copy(x, x + window, win.begin());
            std::sort(win.begin(), win.end());
            y[0] = win[mid];
            for (py::ssize_t i = 1; i < m; ++i) {
                const T old = x[i - 1], add = x[i + window - 1];
                auto pos = std::lower_bound(win.begin(), win.end(), old);
                auto ins = std::lower_bound(win.begin(), win.end(), add);
                if (ins <= pos) {  // shift [ins, pos) one place up, put `add` at ins
                    std::move_backward(ins, pos, pos + 1);
                    *ins = add;
                } else {  // shift (pos, ins) one place down, put `add` just before ins
                    std::move(pos + 1, ins, pos);
                    *(ins - 1) = add;
                }
                y[i] = win[mid];
            }
        }
    }
    if (has_nan) throw py::value_error("running_median: the input holds NaN (replace it first)");
    return out;
}

// Sorts v[0:K] by an odd-even transposition network of branch-free min/max on a local copy:
// unrolled for a constant K it stays in registers, with no mispredicted branches on noise.
template <size_t K>
void sort_small(double* v) {
    double a[K];
    for (size_t i = 0; i < K; ++i) a[i] = v[i];
    for (size_t pass = 0; pass < K; ++pass)
        for (size_t i = pass & 1; i + 1 < K; i += 2) {
            const double lo = std::min(a[i], a[i + 1]), hi = std::max(a[i], a[i + 1]);
            a[i] = lo;
            a[i + 1] = hi;
        }
    for (size_t i = 0; i < K; ++i) v[i] = a[i];
}

// Median of v[0:k] (reorders v; for k <= 16 it leaves v[0:k] sorted).  Rows of up to 8 values
// (a stack of a few frames, the 7-pixel boxes of a bias frame) go through sort_small; up to 16 are
// sorted by insertion, which beats selection there.
double median_of(std::vector<double>& v, size_t k) {
    const size_t h = k / 2;
    if (k <= 16) {
        switch (k) {
            case 2: sort_small<2>(v.data()); break;
            case 3: sort_small<3>(v.data()); break;
            case 4: sort_small<4>(v.data()); break;
            case 5: sort_small<5>(v.data()); break;
            case 6: sort_small<6>(v.data()); break;
            case 7: sort_small<7>(v.data()); break;
            case 8: sort_small<8>(v.data()); break;
            default:
                for (size_t i = 1; i < k; ++i) {
                    const double x = v[i];
                    size_t j = i;
                    for (; j > 0 && v[j - 1] > x; --j) v[j] = v[j - 1];
                    v[j] = x;
                }
        }
        return k % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
    }
    std::nth_element(v.begin(), v.begin() + h, v.begin() + k);
    const double upper = v[h];
    if (k % 2) return upper;
    return 0.5 * (upper + *std::max_element(v.begin(), v.begin() + h));
}

// Median of |s[i] - med| over sorted s[0:k] whose median is med: the deviations below and above
// med, each sorted, merged outward from med up to the middle one(s).  The same value as sorting
// the deviations, without a second sort.
double mad_of_sorted(const std::vector<double>& s, size_t k, double med) {
    const double inf = std::numeric_limits<double>::infinity();
    size_t r = 0;
    while (r < k && s[r] < med) ++r;
    size_t l = r;  // s[l - 1] is the next value below med (none when l == 0)
    double prev = 0, cur = 0;
    for (size_t t = 0; t <= k / 2; ++t) {
        const double dl = l > 0 ? std::fabs(s[l - 1] - med) : inf, dr = r < k ? std::fabs(s[r] - med) : inf;
        prev = cur;
        if (dl <= dr) {
            cur = dl;
            --l;
        } else {
            cur = dr;
            ++r;
        }
    }
    return k % 2 ? cur : 0.5 * (prev + cur);
}

template <class T>
py::tuple biweight(Array<T> a, double c_loc, double c_scale, bool want_scale) {
    if (a.ndim() < 1) throw py::value_error("biweight needs at least a 1-d array");
    const py::ssize_t n = a.shape(a.ndim() - 1);
    const py::ssize_t rows = n ? a.size() / n : 0;
    std::vector<py::ssize_t> shape(a.shape(), a.shape() + a.ndim() - 1);
    py::array_t<double> loc(shape), scale(want_scale ? shape : std::vector<py::ssize_t>{0});
    const T* src = a.data();
    double* lp = loc.mutable_data();
    double* sp = want_scale ? scale.mutable_data() : nullptr;
    {
        py::gil_scoped_release release;
        const double nan = std::numeric_limits<double>::quiet_NaN();
        std::vector<double> v(static_cast<size_t>(n)), d(static_cast<size_t>(n));
        for (py::ssize_t r = 0; r < rows; ++r) {
            const T* x = src + r * n;
            size_t k = 0;
            for (py::ssize_t i = 0; i < n; ++i)
                if (!std::isnan(x[i])) v[k++] = x[i];
            if (k == 0) {
                lp[r] = nan;
                if (sp) sp[r] = nan;
                continue;
            }
            for (size_t i = 0; i < k; ++i) d[i] = v[i];
            const double med = median_of(d, k);
            double mad;
            if (k <= 16) {  // d is sorted
                mad = mad_of_sorted(d, k, med);
                for (size_t i = 0; i < k; ++i) d[i] = v[i] - med;
            } else {
                for (size_t i = 0; i < k; ++i) d[i] = v[i] - med;
                std::vector<double>& ad = v;  // reuse: |d|
                for (size_t i = 0; i < k; ++i) ad[i] = std::fabs(d[i]);
                mad = median_of(ad, k);
            }
            if (!(mad > 0)) mad = 1e-6;
            double sw = 0, swd = 0;
            for (size_t i = 0; i < k; ++i) {
                const double u = d[i] / (c_loc * mad);
                if (std::fabs(u) < 1) {
                    const double w = (1 - u * u) * (1 - u * u);
                    sw += w;
                    swd += w * d[i];
                }
            }
            lp[r] = med + swd / std::max(sw, 1e-12);
            if (sp) {
                double num = 0, den = 0;
                for (size_t i = 0; i < k; ++i) {
                    const double u = d[i] / (c_scale * mad);
                    if (std::fabs(u) < 1) {
                        const double u2 = u * u, q = (1 - u2) * (1 - u2);
                        num += d[i] * d[i] * q * q;
                        den += (1 - u2) * (1 - 5 * u2);
                    }
                }
                sp[r] = std::sqrt(static_cast<double>(k) * num) / std::max(std::fabs(den), 1e-12);
            }
        }
    }
    if (!want_scale) return py::make_tuple(loc, py::none());
    return py::make_tuple(loc, scale);
}

template <class T>
py::array_t<double> median(Array<T> a) {
    if (a.ndim() < 1) throw py::value_error("median needs at least a 1-d array");
    const py::ssize_t n = a.shape(a.ndim() - 1);
    const py::ssize_t rows = n ? a.size() / n : 0;
    std::vector<py::ssize_t> shape(a.shape(), a.shape() + a.ndim() - 1);
    py::array_t<double> out(shape);
    const T* src = a.data();
    double* op = out.mutable_data();
    {
        py::gil_scoped_release release;
        std::vector<double> v(static_cast<size_t>(n));
        for (py::ssize_t r = 0; r < rows; ++r) {
            const T* x = src + r * n;
            size_t k = 0;
            for (py::ssize_t i = 0; i < n; ++i)
                if (!std::isnan(x[i])) v[k++] = x[i];
            op[r] = k ? median_of(v, k) : std::numeric_limits<double>::quiet_NaN();
        }
    }
    return out;
}

}  // namespace

PYBIND11_MODULE(_filters, m) {
    m.doc() = "Robust statistics along the last axis: running median (sorted window), median, Tukey biweight.";
    m.def("running_median", &running_median<float>, py::arg("a"), py::arg("window"));
    m.def("running_median", &running_median<double>, py::arg("a"), py::arg("window"),
          "Median of each window of `window` consecutive values along the last axis (valid positions).");
    m.def("biweight", &biweight<float>, py::arg("a"), py::arg("c_loc") = 6.0, py::arg("c_scale") = 9.0,
          py::arg("scale") = true);
    m.def("biweight", &biweight<double>, py::arg("a"), py::arg("c_loc") = 6.0, py::arg("c_scale") = 9.0,
          py::arg("scale") = true,
          "(location, scale or None) along the last axis: one biweight iteration from the median, NaN ignored.");
    m.def("median", &median<float>, py::arg("a"));
    m.def("median", &median<double>, py::arg("a"), "Median of the finite values along the last axis (NaN if none).");
}
