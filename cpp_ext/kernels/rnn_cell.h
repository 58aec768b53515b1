// Row math of the fused LSTM / GRU cells (aten/native/rnn_cells.cpp owns the ops: checks,
// allocation, threading). Raw compute on contiguous row-major buffers:
//
//   LSTM  gates [N, 4H] (chunks i, f, g, o), state [N, H], workspace [N, 4H] = (i, f, g, o)
//   GRU   gates [N, 3H] (chunks r, z, n), state [N, H], workspace [N, 5H] = (r, z, n, hx, hn)
//
// Every function handles rows [begin, end). Biases (length 4H / 3H) may be null (no bias);
// backward gradient inputs may be null (zero). `Acc` is the math type (float for half/bfloat16).
// float rows run on AVX2 (8 columns at a time, masked tail: every column takes the same
// formulas) when the CPU has it and RUSTORCH_ISA does not lower it, else the portable loops.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

namespace rustorch::kernels::rnn {

// The AVX2 float rows (rnn_cell.cpp); `avx2_rows()` says whether to use them.
bool avx2_rows();
void lstm_forward_avx2(int64_t begin, int64_t end, int64_t h, const float* ig, const float* hg,
                       const float* ib, const float* hb, const float* cx, float* hy, float* cy,
                       float* ws);
void lstm_backward_avx2(int64_t begin, int64_t end, int64_t h, const float* ghy,
                        const float* gcy, const float* cx, const float* cy, const float* ws,
                        float* gg, float* gcx);
void gru_forward_avx2(int64_t begin, int64_t end, int64_t h, const float* ig, const float* hg,
                      const float* ib, const float* hb, const float* hx, float* hy, float* ws);
void gru_backward_avx2(int64_t begin, int64_t end, int64_t h, const float* ghy, const float* ws,
                       float* gi, float* gh, float* ghx);

template <typename Acc>
inline Acc sigmoid(Acc x) {
  return Acc(1) / (Acc(1) + std::exp(-x));
}

template <typename T, typename Acc>
void lstm_forward(int64_t begin, int64_t end, int64_t h, const T* ig, const T* hg, const T* ib,
                  const T* hb, const T* cx, T* hy, T* cy, T* ws) {
  if constexpr (std::is_same_v<T, float>) {
    if (avx2_rows()) return lstm_forward_avx2(begin, end, h, ig, hg, ib, hb, cx, hy, cy, ws);
  }
  for (int64_t row = begin; row < end; ++row) {
    const T* gi = ig + row * 4 * h;
    const T* gh = hg + row * 4 * h;
    T* w = ws + row * 4 * h;
    for (int64_t j = 0; j < h; ++j) {
      Acc pre[4];
      for (int k = 0; k < 4; ++k) {
        const int64_t col = k * h + j;
        Acc v = Acc(gi[col]) + Acc(gh[col]);
        if (ib != nullptr) v += Acc(ib[col]) + Acc(hb[col]);
        pre[k] = v;
      }
      const Acc i = sigmoid(pre[0]), f = sigmoid(pre[1]);
      const Acc g = std::tanh(pre[2]), o = sigmoid(pre[3]);
      const Acc cell = f * Acc(cx[row * h + j]) + i * g;
      cy[row * h + j] = T(cell);
      hy[row * h + j] = T(o * std::tanh(cell));
      w[j] = T(i);
      w[h + j] = T(f);
      w[2 * h + j] = T(g);
      w[3 * h + j] = T(o);
    }
  }
}

template <typename T, typename Acc>
void lstm_backward(int64_t begin, int64_t end, int64_t h, const T* ghy, const T* gcy, const T* cx,
                   const T* cy, const T* ws, T* gg, T* gcx) {
  if constexpr (std::is_same_v<T, float>) {
    if (avx2_rows()) return lstm_backward_avx2(begin, end, h, ghy, gcy, cx, cy, ws, gg, gcx);
  }
  for (int64_t row = begin; row < end; ++row) {
    const T* w = ws + row * 4 * h;
    T* g = gg + row * 4 * h;
    for (int64_t j = 0; j < h; ++j) {
      const int64_t e = row * h + j;
      const Acc i = w[j], f = w[h + j], cg = w[2 * h + j], o = w[3 * h + j];
      const Acc go = ghy != nullptr ? Acc(ghy[e]) : Acc(0);
      const Acc goc = gcy != nullptr ? Acc(gcy[e]) : Acc(0);
      const Acc tc = std::tanh(Acc(cy[e]));
      // d cy: through hy = o * tanh(cy), plus the incoming cell gradient.
      const Acc dc = go * o * (Acc(1) - tc * tc) + goc;
      g[j] = T(dc * cg * (Acc(1) - i) * i);
      g[h + j] = T(dc * Acc(cx[e]) * (Acc(1) - f) * f);
      g[2 * h + j] = T(dc * i * (Acc(1) - cg * cg));
      g[3 * h + j] = T(go * tc * (Acc(1) - o) * o);
      gcx[e] = T(dc * f);
    }
  }
}

template <typename T, typename Acc>
void gru_forward(int64_t begin, int64_t end, int64_t h, const T* ig, const T* hg, const T* ib,
                 const T* hb, const T* hx, T* hy, T* ws) {
  if constexpr (std::is_same_v<T, float>) {
    if (avx2_rows()) return gru_forward_avx2(begin, end, h, ig, hg, ib, hb, hx, hy, ws);
  }
  auto bias = [](const T* b, int64_t col) { return b != nullptr ? Acc(b[col]) : Acc(0); };
  for (int64_t row = begin; row < end; ++row) {
    const T* gi = ig + row * 3 * h;
    const T* gh = hg + row * 3 * h;
    T* w = ws + row * 5 * h;
    for (int64_t j = 0; j < h; ++j) {
      const Acc r = sigmoid(Acc(gi[j]) + Acc(gh[j]) + bias(ib, j) + bias(hb, j));
      const Acc z = sigmoid(Acc(gi[h + j]) + Acc(gh[h + j]) + bias(ib, h + j) + bias(hb, h + j));
      const Acc hn = Acc(gh[2 * h + j]) + bias(hb, 2 * h + j);
      const Acc ng = std::tanh(Acc(gi[2 * h + j]) + bias(ib, 2 * h + j) + r * hn);
      const T prev = hx[row * h + j];
      hy[row * h + j] = T(ng + z * (Acc(prev) - ng));
      w[j] = T(r);
      w[h + j] = T(z);
      w[2 * h + j] = T(ng);
      w[3 * h + j] = prev;
      w[4 * h + j] = T(hn);
    }
  }
}

template <typename T, typename Acc>
void gru_backward(int64_t begin, int64_t end, int64_t h, const T* ghy, const T* ws, T* gi, T* gh,
                  T* ghx) {
  if constexpr (std::is_same_v<T, float>) {
    if (avx2_rows()) return gru_backward_avx2(begin, end, h, ghy, ws, gi, gh, ghx);
  }
  for (int64_t row = begin; row < end; ++row) {
    const T* w = ws + row * 5 * h;
    T* a = gi + row * 3 * h;
    T* b = gh + row * 3 * h;
    for (int64_t j = 0; j < h; ++j) {
      const Acc r = w[j], z = w[h + j], ng = w[2 * h + j];
      const Acc x = w[3 * h + j], hn = w[4 * h + j];
      const Acc go = ghy[row * h + j];
      const Acc dz = go * (x - ng) * (Acc(1) - z) * z;
      const Acc dn = go * (Acc(1) - z) * (Acc(1) - ng * ng);
      const Acc dr = dn * hn * (Acc(1) - r) * r;
      a[j] = b[j] = T(dr);
      a[h + j] = b[h + j] = T(dz);
      a[2 * h + j] = T(dn);
      b[2 * h + j] = T(dn * r);
      ghx[row * h + j] = T(go * z);
    }
  }
}

}  // namespace rustorch::kernels::rnn
