// SHA-256 as FIPS 180-4 defines it (sections 4.1.2, 4.2.2, 5.1.1, 5.3.3, 6.2).

#include "sha256.h"

#include <string.h>

namespace fcp {

namespace {

// The first 32 bits of the fractional parts of the cube roots of the first 64 primes.
const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
inline uint32_t ch(uint32_t x, uint32_t y, uint32_t z) { return (x & y) ^ (~x & z); }
inline uint32_t maj(uint32_t x, uint32_t y, uint32_t z) { return (x & y) ^ (x & z) ^ (y & z); }
inline uint32_t bsig0(uint32_t x) { return rotr(x, 2) ^ rotr(x, 13) ^ rotr(x, 22); }
inline uint32_t bsig1(uint32_t x) { return rotr(x, 6) ^ rotr(x, 11) ^ rotr(x, 25); }
inline uint32_t ssig0(uint32_t x) { return rotr(x, 7) ^ rotr(x, 18) ^ (x >> 3); }
inline uint32_t ssig1(uint32_t x) { return rotr(x, 17) ^ rotr(x, 19) ^ (x >> 10); }

inline uint32_t getU32BE(const unsigned char* p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

}  // namespace

void Sha256::Reset() {
  // The first 32 bits of the fractional parts of the square roots of the first 8 primes.
  static const uint32_t H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(h_, H0, sizeof h_);
  bufLen_ = 0;
  total_ = 0;
}

void Sha256::Block(const unsigned char* p) {
  uint32_t w[64];
  for (int t = 0; t < 16; t++) w[t] = getU32BE(p + 4 * t);
  for (int t = 16; t < 64; t++) w[t] = ssig1(w[t - 2]) + w[t - 7] + ssig0(w[t - 15]) + w[t - 16];
  uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
  for (int t = 0; t < 64; t++) {
    uint32_t t1 = h + bsig1(e) + ch(e, f, g) + K[t] + w[t];
    uint32_t t2 = bsig0(a) + maj(a, b, c);
    h = g; g = f; f = e; e = d + t1;
    d = c; c = b; b = a; a = t1 + t2;
  }
  h_[0] += a; h_[1] += b; h_[2] += c; h_[3] += d;
  h_[4] += e; h_[5] += f; h_[6] += g; h_[7] += h;
}

void Sha256::Update(const void* data, size_t len) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  total_ += len;
  if (bufLen_ > 0) {
    size_t take = 64 - bufLen_ < len ? 64 - bufLen_ : len;
    memcpy(buf_ + bufLen_, p, take);
    bufLen_ += take;
    p += take;
    len -= take;
    if (bufLen_ < 64) return;
    Block(buf_);
    bufLen_ = 0;
  }
  for (; len >= 64; p += 64, len -= 64) Block(p);
  if (len > 0) {
    memcpy(buf_, p, len);
    bufLen_ = len;
  }
}

void Sha256::Final(unsigned char out[32]) {
  // Padding (5.1.1): a 1 bit, zeros up to 56 mod 64 bytes, the length in bits as a u64.
  uint64_t bits = total_ * 8;
  unsigned char pad[72] = {0x80};
  size_t padLen = (bufLen_ < 56 ? 56 : 120) - bufLen_;
  PutU64BE(pad + padLen, bits);
  Update(pad, padLen + 8);
  for (int i = 0; i < 8; i++) PutU32BE(out + 4 * i, h_[i]);
}

void U128::Store(unsigned char out[16]) const {
  PutU64BE(out, hi);
  PutU64BE(out + 8, lo);
}

U128 U128::Load(const unsigned char in[16]) {
  U128 r;
  for (int i = 0; i < 8; i++) r.hi = (r.hi << 8) | in[i];
  for (int i = 8; i < 16; i++) r.lo = (r.lo << 8) | in[i];
  return r;
}

U128 First128(Sha256& h) {
  unsigned char d[32];
  h.Final(d);
  return U128::Load(d);
}

}  // namespace fcp
