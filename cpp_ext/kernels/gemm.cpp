#include "kernels/gemm.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

#include "kernels/cpu_info.h"
#include "kernels/gemm_microkernel.h"
#include "kernels/gemm_scratch.h"

namespace rustorch::kernels {
namespace {

using gemm_detail::MicroKernel;

template <typename T>
struct Blocking {
  MicroKernel<T> ukr;
  int64_t kc, mc, nc;
};

int64_t round_down(int64_t v, int64_t multiple) {
  return std::max(multiple, v / multiple * multiple);
}

// BLIS's analytical model, simplified: a KC x NR micro-panel of B fills half of L1, an MC x KC
// block of A half of L2, a KC x NC block of B a quarter of (at most 32 MiB of) L3.
template <typename T>
const Blocking<T>& blocking() {
  static const Blocking<T> blk = [] {
    const auto& cs = cpu::cache_sizes();
    Blocking<T> b{gemm_detail::microkernel<T>(cpu::best_isa()), 0, 0, 0};
    const int64_t sz = sizeof(T);
    b.kc = std::clamp<int64_t>(round_down(cs.l1d / (2 * b.ukr.nr * sz), 8), 64, 1024);
    b.mc = std::clamp<int64_t>(round_down(cs.l2 / (2 * b.kc * sz), b.ukr.mr), b.ukr.mr,
                               128 * b.ukr.mr);
    const int64_t l3 = std::min<int64_t>(cs.l3, 32 << 20);
    b.nc = std::clamp<int64_t>(round_down(l3 / (4 * b.kc * sz), b.ukr.nr), b.ukr.nr, 8192);
    return b;
  }();
  return blk;
}

// A[i0:i0+mc, 0:kc] (a points at A[i0, p0]) -> panels of MR rows: panel r holds, for each p,
// the MR values A[r*MR + 0..MR-1, p]. Rows past mc are zero.
template <typename T>
void pack_a(const MicroKernel<T>& ukr, const T* a, int64_t rsa, int64_t csa, int64_t mc,
            int64_t kc, T* dst) {
  const int64_t mr = ukr.mr;
  for (int64_t ir = 0; ir < mc; ir += mr, dst += mr * kc) {
    const int64_t rows = std::min(mr, mc - ir);
    const T* src = a + ir * rsa;
    if (csa == 1 && rows == mr && ukr.interleave_mr != nullptr) {
      ukr.interleave_mr(src, rsa, kc, dst);
    } else if (csa == 1 && rows == mr) {
      for (int64_t i = 0; i < mr; ++i)  // read rows contiguously, write with stride MR
        for (int64_t p = 0; p < kc; ++p) dst[p * mr + i] = src[i * rsa + p];
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        for (int64_t i = 0; i < rows; ++i) dst[p * mr + i] = src[i * rsa + p * csa];
        for (int64_t i = rows; i < mr; ++i) dst[p * mr + i] = T(0);
      }
    }
  }
}

// B[0:kc, j0:j0+nc] (b points at B[p0, j0]) -> panels of NR columns: panel r holds, for each p,
// the NR values B[p, r*NR + 0..NR-1]. Columns past nc are zero.
template <typename T>
void pack_b(const MicroKernel<T>& ukr, const T* b, int64_t rsb, int64_t csb, int64_t kc,
            int64_t nc, T* dst) {
  const int64_t nr = ukr.nr;
  for (int64_t jr = 0; jr < nc; jr += nr, dst += nr * kc) {
    const int64_t cols = std::min(nr, nc - jr);
    const T* src = b + jr * csb;
    if (rsb == 1 && cols == nr && ukr.interleave_nr != nullptr) {
      ukr.interleave_nr(src, csb, kc, dst);
    } else if (csb == 1 && cols == nr) {
      for (int64_t p = 0; p < kc; ++p) std::memcpy(dst + p * nr, src + p * rsb, nr * sizeof(T));
    } else if (rsb == 1) {
      for (int64_t j = 0; j < cols; ++j)
        for (int64_t p = 0; p < kc; ++p) dst[p * nr + j] = src[j * csb + p];
      for (int64_t j = cols; j < nr; ++j)
        for (int64_t p = 0; p < kc; ++p) dst[p * nr + j] = T(0);
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        for (int64_t j = 0; j < cols; ++j) dst[p * nr + j] = src[p * rsb + j * csb];
        for (int64_t j = cols; j < nr; ++j) dst[p * nr + j] = T(0);
      }
    }
  }
}

// The two loops around the micro-kernel over one packed MC x KC block of A and KC x NC of B.
// direct_b: B is read in place at B[pc, jc] (unit column stride, rows rsb apart), except a
// partial last panel, which the caller packed into b_edge.
template <typename T>
void macro_kernel(const Blocking<T>& blk, int64_t mc, int64_t nc, int64_t kc, const T* ap,
                  const T* bp, bool direct_b, int64_t rsb, const T* b_edge, T* c, int64_t rsc,
                  int64_t csc, T alpha, T beta) {
  const int64_t mr = blk.ukr.mr, nr = blk.ukr.nr;
  alignas(64) T tmp[256];
  for (int64_t jr = 0; jr < nc; jr += nr) {
    const int64_t cols = std::min(nr, nc - jr);
    // In place only for full panels: a partial one would read past the last column.
    const bool in_place = direct_b && cols == nr;
    const T* b = in_place ? bp + jr : direct_b ? b_edge : bp + jr * kc;
    for (int64_t ir = 0; ir < mc; ir += mr) {
      const int64_t rows = std::min(mr, mc - ir);
      T* cij = c + ir * rsc + jr * csc;
      const T* a = ap + ir * kc;
      if (rows == mr && cols == nr) {
        if (in_place) blk.ukr.fn_ldb(kc, a, b, rsb, cij, rsc, csc, alpha, beta);
        else blk.ukr.fn(kc, a, b, cij, rsc, csc, alpha, beta);
      } else {
        if (in_place) blk.ukr.fn_ldb(kc, a, b, rsb, tmp, nr, 1, T(1), T(0));
        else blk.ukr.fn(kc, a, b, tmp, nr, 1, T(1), T(0));
        gemm_detail::store_tile_generic(tmp, rows, cols, nr, cij, rsc, csc, alpha, beta);
      }
    }
  }
}

// Goto's three outer loops (NC, KC, MC) for the sub-problem C[m0:m1, n0:n1], on one thread.
// The K blocks and their order do not depend on direct_b or the sub-problem.
template <typename T>
void gemm_block(const Blocking<T>& blk, const GemmArgs<T>& g, bool direct_b, int64_t m0,
                int64_t m1, int64_t n0, int64_t n1) {
  if (m0 >= m1 || n0 >= n1) return;
  const int64_t mr = blk.ukr.mr, nr = blk.ukr.nr;
  const int64_t nc_max = std::min(blk.nc, (n1 - n0 + nr - 1) / nr * nr);
  const int64_t kc_max = std::min(blk.kc, g.k);
  const int64_t mc_max = std::min(blk.mc, (m1 - m0 + mr - 1) / mr * mr);
  T* bbuf = thread_scratch<T, 0>(kc_max * (direct_b ? nr : nc_max));
  T* abuf = thread_scratch<T, 1>(mc_max * kc_max);
  for (int64_t jc = n0; jc < n1; jc += blk.nc) {
    const int64_t nc = std::min(blk.nc, n1 - jc);
    const int64_t edge = nc % nr;  // columns of a partial last panel
    for (int64_t s = 0; s < g.segments; ++s) {
      const T* as = g.a + s * g.bsa;
      const T* bs = g.b + s * g.bsb;
      for (int64_t pc = 0; pc < g.k; pc += blk.kc) {
        const int64_t kc = std::min(blk.kc, g.k - pc);
        const T beta = (s == 0 && pc == 0) ? g.beta : T(1);
        const T* bsrc = bs + pc * g.rsb + jc * g.csb;
        if (!direct_b) pack_b(blk.ukr, bsrc, g.rsb, g.csb, kc, nc, bbuf);
        else if (edge != 0) pack_b(blk.ukr, bsrc + (nc - edge) * g.csb, g.rsb, g.csb, kc, edge, bbuf);
        for (int64_t ic = m0; ic < m1; ic += blk.mc) {
          const int64_t mc = std::min(blk.mc, m1 - ic);
          pack_a(blk.ukr, as + ic * g.rsa + pc * g.csa, g.rsa, g.csa, mc, kc, abuf);
          macro_kernel(blk, mc, nc, kc, abuf, direct_b ? bsrc : bbuf, direct_b, g.rsb, bbuf,
                       g.c + ic * g.rsc + jc * g.csc, g.rsc, g.csc, g.alpha, beta);
        }
      }
    }
  }
}

// C = beta * C (the whole answer when k == 0 or alpha == 0, as in BLAS).
template <typename T>
void scale_c(const GemmArgs<T>& g) {
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      T& v = g.c[i * g.rsc + j * g.csc];
      v = g.beta == T(0) ? T(0) : g.beta * v;
    }
}

struct Split {
  int64_t tm, tn;
};

// Thread grid tm x tn over (M panels, N panels) minimizing the slowest thread's cost: its
// flops plus what it packs (a thread packs its own B columns and all A rows of its slab, so
// splitting N repacks A and splitting M repacks B). A packed value costs about 20 flops.
Split choose_split(int64_t nt, int64_t m, int64_t n, int64_t k, int64_t mr, int64_t nr,
                   int64_t nc) {
  const int64_t mp = (m + mr - 1) / mr, np = (n + nr - 1) / nr;
  Split best{1, nt};
  double best_cost = -1.0;
  for (int64_t tm = 1; tm <= nt; ++tm) {
    if (nt % tm != 0) continue;
    const int64_t tn = nt / tm;
    if (tm > mp || tn > np) continue;
    const double mt = static_cast<double>((mp + tm - 1) / tm * mr);
    const double ntc = static_cast<double>((np + tn - 1) / tn * nr);
    const double jblocks = std::ceil(ntc / static_cast<double>(nc));
    const double cost = 2.0 * k * mt * ntc + 20.0 * k * (ntc + mt * jblocks);
    if (best_cost < 0 || cost < best_cost) best = {tm, tn}, best_cost = cost;
  }
  if (best_cost < 0) best = mp >= np ? Split{std::min(nt, mp), 1} : Split{1, std::min(nt, np)};
  return best;
}

// Up to this many rows of C (after the column-major swap), B is read in place when its columns
// are contiguous: each B value then feeds at most 2 * 128 flops, and copying it into a packed
// panel costs a noticeable part of that (-9% CPU time for the 32 x 1024 . 1024 x 256 of an
// LSTM step's input gradient). A B with unit row stride (x . W^T) is still packed: its panels
// are a transpose, and reading it in place measured no faster.
constexpr int64_t kDirectMaxM = 128;

template <typename T>
bool use_direct_b(const Blocking<T>& blk, const GemmArgs<T>& g) {
  return !g.force_packing && blk.ukr.fn_ldb != nullptr && g.m <= kDirectMaxM && g.csb == 1 &&
         g.n >= blk.ukr.nr;
}

}  // namespace

template <typename T>
void gemm(const GemmArgs<T>& args, bool parallel) {
  GemmArgs<T> g = args;
  if (g.m <= 0 || g.n <= 0) return;
  if (g.k <= 0 || g.segments <= 0 || g.alpha == T(0)) return scale_c(g);
  // Vector stores want C's unit stride along N: if C is column-major, solve C^T = B^T . A^T.
  if (g.csc != 1 && g.rsc == 1) {
    std::swap(g.m, g.n);
    std::swap(g.a, g.b);
    std::swap(g.bsa, g.bsb);
    const int64_t rsa = g.rsa, csa = g.csa;
    g.rsa = g.csb, g.csa = g.rsb;
    g.rsb = csa, g.csb = rsa;
    std::swap(g.rsc, g.csc);
  }
  const Blocking<T>& blk = blocking<T>();
  const int64_t mr = blk.ukr.mr, nr = blk.ukr.nr;
  const bool direct_b = use_direct_b(blk, g);
  const double flops = 2.0 * g.m * g.n * g.k * g.segments;
  int64_t nt = parallel && !at::in_parallel_region() ? at::get_num_threads() : 1;
  nt = std::max<int64_t>(1, std::min<int64_t>(nt, static_cast<int64_t>(flops / 2e5)));
  if (nt == 1) return gemm_block(blk, g, direct_b, 0, g.m, 0, g.n);
  const Split sp = choose_split(nt, g.m, g.n, g.k * g.segments, mr, nr, blk.nc);
  const int64_t mp = (g.m + mr - 1) / mr, np = (g.n + nr - 1) / nr;
  at::parallel_for(0, sp.tm * sp.tn, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t ti = t / sp.tn, tj = t % sp.tn;
      const int64_t m0 = std::min(g.m, ti * mp / sp.tm * mr);
      const int64_t m1 = std::min(g.m, (ti + 1) * mp / sp.tm * mr);
      const int64_t n0 = std::min(g.n, tj * np / sp.tn * nr);
      const int64_t n1 = std::min(g.n, (tj + 1) * np / sp.tn * nr);
      gemm_block(blk, g, direct_b, m0, m1, n0, n1);
    }
  });
}

template <typename T>
void gemm_batched(const GemmArgs<T>& args, int64_t batch, int64_t batch_a, int64_t batch_b,
                  int64_t batch_c) {
  if (batch <= 0) return;
  auto one = [&](int64_t i, bool parallel) {
    GemmArgs<T> g = args;
    g.a += i * batch_a;
    g.b += i * batch_b;
    g.c += i * batch_c;
    gemm(g, parallel);
  };
  const double flops = 2.0 * args.m * args.n * args.k * args.segments;
  // One problem per thread when each is small (< ~4 MFLOP) and there are enough of them.
  if (batch >= at::get_num_threads() && flops < 4e6) {
    at::parallel_for(0, batch, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) one(i, false);
    });
  } else {
    for (int64_t i = 0; i < batch; ++i) one(i, true);
  }
}

template <typename T>
std::string gemm_config() {
  const Blocking<T>& b = blocking<T>();
  return std::string(b.ukr.name) + " KC=" + std::to_string(b.kc) + " MC=" + std::to_string(b.mc) +
         " NC=" + std::to_string(b.nc);
}

template void gemm<float>(const GemmArgs<float>&, bool);
template void gemm<double>(const GemmArgs<double>&, bool);
template void gemm_batched<float>(const GemmArgs<float>&, int64_t, int64_t, int64_t, int64_t);
template void gemm_batched<double>(const GemmArgs<double>&, int64_t, int64_t, int64_t, int64_t);
template std::string gemm_config<float>();
template std::string gemm_config<double>();

}  // namespace rustorch::kernels
