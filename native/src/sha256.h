// SHA-256 (FIPS 180-4), small and self-contained.
//
// Why here and not OpenSSL: the batch copy computes fsum's digests (src/checksum/hasher.ts,
// entry-digest.ts) in the thread pool, a few short messages per file; linking libcrypto
// (whose headers and symbols differ between Node builds and distributions) is not worth
// it for that. Checked against node:crypto by test/unit/native.test.ts (sha256 export).

#ifndef FCP_SHA256_H
#define FCP_SHA256_H

#include <stddef.h>
#include <stdint.h>

namespace fcp {

class Sha256 {
 public:
  Sha256() { Reset(); }
  void Reset();
  void Update(const void* data, size_t len);
  /** Pads, writes the 32-byte digest to out; the object must be Reset() before reuse. */
  void Final(unsigned char out[32]);

 private:
  void Block(const unsigned char* p);
  uint32_t h_[8];
  unsigned char buf_[64];
  size_t bufLen_;
  uint64_t total_;  // bytes fed so far
};

/** A 128-bit number as two 64-bit halves; arithmetic mod 2^128 (fsum's digests). */
struct U128 {
  uint64_t hi = 0, lo = 0;
  U128& operator+=(const U128& o) {
    uint64_t lo2 = lo + o.lo;
    hi += o.hi + (lo2 < lo ? 1 : 0);
    lo = lo2;
    return *this;
  }
  /** Big-endian, 16 bytes (the order fsum's hex and the entry encoding use). */
  void Store(unsigned char out[16]) const;
  static U128 Load(const unsigned char in[16]);
};

/** The first 16 bytes of a SHA-256 digest read as a big-endian number (hasher.ts sha128). */
U128 First128(Sha256& h);

inline void PutU64BE(unsigned char* p, uint64_t v) {
  for (int i = 7; i >= 0; i--) { p[i] = (unsigned char)v; v >>= 8; }
}
inline void PutU32BE(unsigned char* p, uint32_t v) {
  for (int i = 3; i >= 0; i--) { p[i] = (unsigned char)v; v >>= 8; }
}

}  // namespace fcp

#endif
