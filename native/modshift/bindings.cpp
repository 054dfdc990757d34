// Python bindings of the native model-shift test: module astroflow._modshift.
// The computation runs without the GIL, so threads can run tests side by side.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "modshift.hpp"
#include "trapezoid.hpp"

namespace py = pybind11;

namespace {

using Array = py::array_t<double, py::array::c_style | py::array::forcecast>;

std::vector<double> to_vector(const Array& a, const char* name) {
    if (a.ndim() != 1) throw py::value_error(std::string(name) + " must be a 1-d array");
    return std::vector<double>(a.data(), a.data() + a.size());
}

py::array_t<double> to_array(const std::vector<double>& v) {
    py::array_t<double> out(static_cast<py::ssize_t>(v.size()));
    std::copy(v.begin(), v.end(), out.mutable_data());
    return out;
}

// The input file of the original program: whitespace-separated "time flux
// model" rows; blank lines and lines starting with '#' are skipped.
struct Table {
    std::vector<double> time, flux, model;
};

Table read_table(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) throw py::value_error("cannot read " + path + ": is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw py::value_error("cannot read " + path + ": " + std::generic_category().message(errno));
    std::ostringstream buffer;
    buffer << in.rdbuf();
    const std::string text = buffer.str();
    Table table;
    const char* const end = text.data() + text.size();
    auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
    std::size_t line_no = 0;
    for (const char* p = text.data(); p < end;) {
        const char* eol = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
        if (eol == nullptr) eol = end;
        ++line_no;
        double v[3];
        int count = 0;
        while (p < eol && is_space(*p)) ++p;
        if (p < eol && *p == '#') p = eol;  // comment line
        while (p < eol) {
            const char* token_end = p;
            while (token_end < eol && !is_space(*token_end)) ++token_end;
            const char* digits = (*p == '+') ? p + 1 : p;  // from_chars does not take a leading '+'
            double x = 0.0;
            const auto parsed = std::from_chars(digits, token_end, x);
            if (parsed.ec != std::errc() || parsed.ptr != token_end || digits == token_end) {
                throw py::value_error(path + ": line " + std::to_string(line_no) + ": not a number: '" +
                                      std::string(p, token_end) + "' (expected rows of: time flux model)");
            }
            if (!std::isfinite(x))
                throw py::value_error(path + ": line " + std::to_string(line_no) + ": non-finite value");
            if (count < 3) v[count] = x;
            ++count;
            p = token_end;
            while (p < eol && is_space(*p)) ++p;
        }
        if (count != 0 && count != 3)
            throw py::value_error(path + ": line " + std::to_string(line_no) +
                                  ": expected 3 columns (time flux model), found " + std::to_string(count));
        if (count == 3) {
            table.time.push_back(v[0]);
            table.flux.push_back(v[1]);
            table.model.push_back(v[2]);
        }
        p = eol + 1;
    }
    if (table.time.empty()) throw py::value_error(path + ": no data rows (expected rows of: time flux model)");
    return table;
}

py::dict to_dict(const modshift::Result& r, bool curves);

modshift::Options make_options(bool direct_scan, bool return_curves, double outlier_window, bool parallel) {
    modshift::Options opt;
    opt.parallel = parallel;
    opt.direct_scan = direct_scan;
    opt.keep_curves = return_curves;
    opt.outlier_window = outlier_window;
    return opt;
}

py::dict run(const Array& time, const Array& flux, const Array& model, double period, double epoch,
             bool direct_scan, bool return_curves, double outlier_window, bool parallel) {
    const std::vector<double> t = to_vector(time, "time");
    const std::vector<double> f = to_vector(flux, "flux");
    const std::vector<double> m = to_vector(model, "model");
    const modshift::Options opt = make_options(direct_scan, return_curves, outlier_window, parallel);
    modshift::Result r;
    {
        py::gil_scoped_release release;
        r = modshift::run(t, f, m, period, epoch, opt);
    }
    return to_dict(r, return_curves);
}

py::dict run_file(const std::string& path, double period, double epoch, double outlier_window, bool parallel) {
    const modshift::Options opt = make_options(false, false, outlier_window, parallel);
    modshift::Result r;
    {
        py::gil_scoped_release release;  // py::value_error is a plain C++ exception until it reaches Python
        const Table table = read_table(path);
        try {
            r = modshift::run(table.time, table.flux, table.model, period, epoch, opt);
        } catch (const std::invalid_argument& e) {
            throw py::value_error(path + ": " + e.what());
        }
    }
    py::dict d = to_dict(r, false);
    d["n_points"] = r.main.n_points;
    return d;
}

py::dict to_dict(const modshift::Result& r, bool curves) {
    py::dict d;
    d["sigma_pri"] = r.sigma_pri;
    d["sigma_sec"] = r.sigma_sec;
    d["sigma_ter"] = r.sigma_ter;
    d["sigma_pos"] = r.sigma_pos;
    d["sigma_oe"] = r.sigma_oe;
    d["dmm"] = r.dmm;
    d["shape"] = r.shape;
    d["tat"] = r.tat;
    d["fa1"] = r.fa1;
    d["fa2"] = r.fa2;
    d["fred"] = r.fred;
    d["phase_pri"] = r.phase_pri;
    d["phase_sec"] = r.phase_sec;
    d["phase_ter"] = r.phase_ter;
    d["phase_pos"] = r.phase_pos;
    d["sec_depth"] = r.sec_depth;
    d["sec_depth_err"] = r.sec_depth_err;
    d["valid"] = r.valid;
    d["baseflux"] = r.baseflux;
    d["duration"] = r.duration;
    d["depth"] = r.depth;
    d["depsig"] = r.depsig;
    d["rms"] = r.main.rms;
    d["n_in_transit"] = r.n_in_transit;
    d["n_used"] = r.n_used;
    d["n_events"] = r.n_events;
    d["odd_depth"] = r.odd_depth;
    d["odd_depth_err"] = r.odd_depth_err;
    d["even_depth"] = r.even_depth;
    d["even_depth_err"] = r.even_depth_err;
    d["left_depth"] = r.left_depth;
    d["left_depth_err"] = r.left_depth_err;
    d["right_depth"] = r.right_depth;
    d["right_depth_err"] = r.right_depth_err;
    if (curves) {
        d["data_phase"] = to_array(r.main.data_phase);
        d["data_flux"] = to_array(r.main.data_flux);
        d["data_model"] = to_array(r.main.data_model);
        d["conv_depth"] = to_array(r.main.conv_depth);
    }
    return d;
}

py::array_t<double> shift_sums(const Array& flux, const Array& model, double base, std::size_t start,
                               std::size_t end, bool direct) {
    const std::vector<double> f = to_vector(flux, "flux");
    const std::vector<double> m = to_vector(model, "model");
    std::vector<double> s;
    {
        py::gil_scoped_release release;
        s = modshift::shift_sums(f, m, base, start, end, direct);
    }
    return to_array(s);
}

modshift::trapezoid::Vec to_vec4(const Array& a, const char* name) {
    if (a.ndim() != 1 || a.size() != modshift::trapezoid::kDim)
        throw py::value_error(std::string(name) + " must be a 1-d array of 4 values");
    modshift::trapezoid::Vec v;
    std::copy(a.data(), a.data() + 4, v.begin());
    return v;
}

py::dict trapezoid_fit(const Array& time, const Array& y, const py::array_t<bool, py::array::c_style | py::array::forcecast>& fine,
                       double sigma, double cadence, int supersample, double epoch, double period, const Array& lo,
                       const Array& span, const Array& starts, double xatol, double fatol, long maxiter, long maxfev) {
    namespace tz = modshift::trapezoid;
    const std::vector<double> d = to_vector(time, "time");
    const std::vector<double> f = to_vector(y, "y");
    if (fine.ndim() != 1) throw py::value_error("fine must be a 1-d array");
    std::vector<char> fn(fine.data(), fine.data() + fine.size());
    if (starts.ndim() != 2 || starts.shape(1) != tz::kDim) throw py::value_error("starts must have shape (n, 4)");
    std::vector<tz::Vec> st(static_cast<std::size_t>(starts.shape(0)));
    for (std::size_t k = 0; k < st.size(); ++k) std::copy(starts.data() + 4 * k, starts.data() + 4 * k + 4, st[k].begin());
    tz::Options opt;
    opt.xatol = xatol;
    opt.fatol = fatol;
    opt.maxiter = maxiter;
    opt.maxfev = maxfev;
    tz::Result r;
    {
        py::gil_scoped_release release;
        try {
            const tz::Problem p = tz::make_problem(d, f, fn, sigma, cadence, supersample, epoch, period,
                                                   to_vec4(lo, "lo"), to_vec4(span, "span"));
            r = tz::fit(st, p, opt);
        } catch (const std::invalid_argument& e) {
            throw py::value_error(e.what());
        }
    }
    py::dict out;
    py::array_t<double> x(tz::kDim);
    std::copy(r.x.begin(), r.x.end(), x.mutable_data());
    out["x"] = x;
    out["fun"] = r.fun;
    out["nfev"] = r.nfev;
    out["nit"] = r.nit;
    return out;
}

py::array_t<double> trapezoid_chi2(const Array& time, const Array& y,
                                    const py::array_t<bool, py::array::c_style | py::array::forcecast>& fine,
                                    double sigma, double cadence, int supersample, double epoch, double period,
                                    const Array& lo, const Array& span, const Array& u) {
    namespace tz = modshift::trapezoid;
    if (fine.ndim() != 1) throw py::value_error("fine must be a 1-d array");
    if (u.ndim() != 2 || u.shape(1) != tz::kDim) throw py::value_error("u must have shape (n, 4)");
    const std::vector<char> fn(fine.data(), fine.data() + fine.size());
    tz::Problem p;
    try {
        p = tz::make_problem(to_vector(time, "time"), to_vector(y, "y"), fn, sigma, cadence, supersample, epoch,
                             period, to_vec4(lo, "lo"), to_vec4(span, "span"));
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    }
    py::array_t<double> out(u.shape(0));
    for (py::ssize_t k = 0; k < u.shape(0); ++k) {
        tz::Vec v;
        std::copy(u.data() + 4 * k, u.data() + 4 * k + 4, v.begin());
        out.mutable_data()[k] = tz::chi2(v, p);
    }
    return out;
}

}  // namespace

PYBIND11_MODULE(_modshift, mod) {
    mod.doc() =
        "Native model-shift test (TESS-ExoClass step 13: modshift_test.py calling Coughlin's modshift).";
    mod.def("run", &run, py::arg("time"), py::arg("flux"), py::arg("model"), py::arg("period"), py::arg("epoch"),
            py::kw_only(), py::arg("direct_scan") = false, py::arg("return_curves") = false,
            py::arg("outlier_window") = modshift::Options().outlier_window, py::arg("parallel") = false,
            "Run the model-shift test on time, flux, model (relative flux about 0) at period and epoch (days).\n"
            "Returns a dict: the 17 outputs of the original program (sigma_pri, sigma_sec, sigma_ter, sigma_pos,\n"
            "sigma_oe, dmm, shape, tat, fa1, fa2, fred, phase_pri, phase_sec, phase_ter, phase_pos, sec_depth,\n"
            "sec_depth_err) and internals (valid, baseflux, duration, depth, depsig, rms, n_in_transit, ...).\n"
            "parallel=True runs the four sub-passes in threads (same answer). Raises ValueError on bad input.");
    mod.def("run_file", &run_file, py::arg("path"), py::arg("period"), py::arg("epoch"), py::kw_only(),
            py::arg("outlier_window") = modshift::Options().outlier_window, py::arg("parallel") = false,
            "Read the original program's input file (whitespace-separated 'time flux model' rows) and run\n"
            "the test on it; the same dict as run() plus n_points. Does not need numpy. Raises ValueError\n"
            "naming the file and line on unreadable input.");
    mod.def("shift_sums", &shift_sums, py::arg("flux"), py::arg("model"), py::arg("base"), py::arg("start"),
            py::arg("end"), py::arg("direct") = false,
            "Sum of squared residuals of the model shifted by 0..n-1 points over phase-sorted flux\n"
            "(the model departs from base only in points [start, end)). FFT or direct O(n^2).");
    mod.def("inverfc", &modshift::inverfc, py::arg("p"), "Inverse complementary error function.");
    mod.def("trapezoid_fit", &trapezoid_fit, py::arg("time"), py::arg("y"), py::arg("fine"), py::arg("sigma"),
            py::arg("cadence"), py::arg("supersample"), py::arg("epoch"), py::arg("period"), py::arg("lo"),
            py::arg("span"), py::arg("starts"), py::kw_only(), py::arg("xatol") = 1e-5, py::arg("fatol") = 1e-5,
            py::arg("maxiter") = 2000, py::arg("maxfev") = 2000,
            "Trapezoid fit of TEC step 13 (steps.tec.science.trapezoid): points at time (BTJD) with flux y,\n"
            "supersampled where fine, the DV epoch and the period; parameters (t0, depth, duration h,\n"
            "flat ratio) = lo + u * span, u in [0, 1]^4; scipy's bounded Nelder-Mead from each start (rows of\n"
            "starts, unit coordinates). Returns the best start's dict: x (u), fun (chi-square, NaN if none\n"
            "finite), nfev, nit.");
    mod.def("trapezoid_chi2", &trapezoid_chi2, py::arg("time"), py::arg("y"), py::arg("fine"), py::arg("sigma"),
            py::arg("cadence"), py::arg("supersample"), py::arg("epoch"), py::arg("period"), py::arg("lo"),
            py::arg("span"), py::arg("u"),
            "The chi-square trapezoid_fit minimises, at each row of u (unit coordinates; for tests).");
}
