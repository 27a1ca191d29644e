/**
 * How large a frame may be on the wire, and why.
 *
 * A ZeroMQ frame names its size before its bytes arrive, and libzmq allocates that much
 * for it: without a limit, one frame declaring 8 GiB made a rank grow by as much as was
 * sent, before the job's secret could be checked. So the receiving socket gets
 * ZMQ_MAXMSGSIZE (`maxMessageSize`) = MAX_FRAME_BYTES, and libzmq closes the connection
 * of a peer that announces a larger frame, having allocated nothing for it.
 *
 * The limit cannot be "the largest legitimate message", because some have no bound:
 * measured with node on worst-case contents (4,095-byte paths, 255-byte names, every
 * number at its widest), a steal reply carries items of up to 549 KB each (a copy item
 * of 128 "other" entries; a walk item of 512 names is 136 KB, a batch of 64 files 275 KB)
 * and gives away half a queue of them; a hard-link exchange round of 4,096 records is up
 * to 17 MB (names) or 34 MB (roles); an fsum record carries every chunk of its file
 * (about 50 bytes a chunk: 50 MB for a 1 TiB file in 1 MiB chunks); and the allgathers of
 * chunk digests and chunk failures grow with the number of chunks in the job (about
 * 170 bytes a chunk with 60-byte paths). So a message larger than FRAGMENT_BYTES is sent
 * as fragments of FRAGMENT_BYTES, each a message of its own that carries the secret
 * (messages.ts `frag`), and reassembled only for senders that proved the secret.
 *
 * FRAGMENT_BYTES = 4 MiB: nearly every message (tokens, heartbeats, counters, most steal
 * replies) is far smaller and goes whole; a 34 MB exchange round goes as 9 fragments.
 * MAX_FRAME_BYTES adds 64 KiB to it for the fragment's envelope (about 60 bytes: the
 * header, the secret, the sender, and the part numbers), a generous margin.
 * A stranger that knows an endpoint can still make a rank hold MAX_FRAME_BYTES per
 * connection while the frame arrives; connections from outside the job's addresses are
 * refused before any frame (address-gate.ts).
 */
export const FRAGMENT_BYTES = 4 * 1024 * 1024;
export const MAX_FRAME_BYTES = FRAGMENT_BYTES + 64 * 1024;
/** Fragments of one message, at most: 4 GiB, the largest Buffer Node 20 makes. */
export const MAX_FRAGMENTS = 1024;
