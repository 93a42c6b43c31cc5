//! The decoding thread of [`verify_bundle`](super::verify_bundle): the zstd data frames of the
//! file, front to back, into buffers handed to the checking thread; then the bytes after them.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use zstd::stream::raw::{InBuffer, Operation, OutBuffer};

use super::report::{VerifyError, VerifyErrorKind};
use crate::format::TAR_BLOCK;
use crate::reader::index::FrameInfo;

/// Decoded bytes handed from the decoding thread to the checking thread at once.
pub(super) const CHUNK: usize = 1 << 20;
/// Buffers in flight between the two threads (bounds memory, lets both threads run).
pub(super) const BUFFERS: usize = 4;
/// Compressed bytes read from the file at once.
const READ_BUF: usize = 1 << 20;

/// The zstd magic numbers `0x184D2A50..=0x184D2A5F` start skippable frames.
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE_BASE: u32 = 0x184D_2A50;

/// Largest entry table plus seek table accepted after the data frames.
const MAX_TAIL_SIZE: u64 = 256 << 20;

pub(super) enum Msg {
    /// Decoded tar bytes `buf[..len]`, all from one zstd frame.
    Data {
        buf: Vec<u8>,
        len: usize,
        tar_offset: u64,
        frame_offset: u64,
    },
    /// The data frames are over; `tail` is everything after them (the index frames).
    End {
        frames: Vec<FrameInfo>,
        tail: Vec<u8>,
        tail_offset: u64,
    },
    /// Decoding stopped; the error carries its byte offsets. `head` holds what the failed
    /// frame decoded to before the failure, when that starts at the frame's start: never
    /// checked, only used to name the entry whose header it holds.
    Failed(VerifyError, Vec<u8>),
}

/// Buffered input that knows its position in the file.
pub(super) struct Input<'a, R> {
    reader: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[0]`.
    base: u64,
    eof: bool,
    consumed: &'a AtomicU64,
}

impl<R: Read> Input<'_, R> {
    fn pos(&self) -> u64 {
        self.base + self.start as u64
    }

    fn avail(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Reads until at least `min` bytes are buffered or the file ends.
    fn fill(&mut self, min: usize) -> Result<(), VerifyError> {
        while self.end - self.start < min && !self.eof {
            if self.start > 0 && (self.end == self.buf.len() || self.start == self.end) {
                self.buf.copy_within(self.start..self.end, 0);
                self.base += self.start as u64;
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                let len = self.buf.len();
                self.buf.resize(len.max(min).next_power_of_two(), 0);
            }
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.end += n;
                    self.consumed
                        .store(self.base + self.end as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    let at = self.base + self.end as u64;
                    return Err(
                        VerifyError::new(VerifyErrorKind::Read { source }).at(None, Some(at))
                    );
                }
            }
        }
        Ok(())
    }
}

pub(super) fn decode<R: Read>(
    reader: R,
    out: mpsc::SyncSender<Msg>,
    pool: mpsc::Receiver<Vec<u8>>,
    consumed: &AtomicU64,
) {
    let mut input = Input {
        reader,
        buf: vec![0; READ_BUF],
        start: 0,
        end: 0,
        base: 0,
        eof: false,
        consumed,
    };
    let mut head = Vec::new();
    match decode_frames(&mut input, &out, &pool, &mut head) {
        Ok(()) | Err(None) => {}
        Err(Some(e)) => {
            let _ = out.send(Msg::Failed(e, head));
        }
    }
}

/// `Err(None)`: the checking thread stopped listening.
fn decode_frames<R: Read>(
    input: &mut Input<'_, R>,
    out: &mpsc::SyncSender<Msg>,
    pool: &mpsc::Receiver<Vec<u8>>,
    head: &mut Vec<u8>,
) -> Result<(), Option<VerifyError>> {
    let mut dctx = zstd::stream::raw::Decoder::new()
        .map_err(|source| VerifyError::new(VerifyErrorKind::Decompress { source }))?;
    let mut frames: Vec<FrameInfo> = Vec::new();
    let mut tar_pos = 0u64;
    // Buffers are always CHUNK long and initialised; `filled` says how much is decoded.
    let mut buf = pool.recv().map_err(|_| None)?;
    let mut filled = 0;

    loop {
        // At a frame boundary: a data frame, the index frames, or the end of the file.
        input.fill(4)?;
        let avail = input.avail();
        let skippable = avail.len() >= 4
            && u32::from_le_bytes(avail[..4].try_into().expect("4 bytes")) & SKIPPABLE_MASK
                == SKIPPABLE_BASE;
        if !avail.is_empty() && avail.len() < 4 {
            let file_len = input.pos() + avail.len() as u64;
            return Err(Some(
                VerifyError::new(VerifyErrorKind::Truncated {
                    file_len,
                    what: "inside the magic number of a zstd frame".to_owned(),
                })
                .at(Some(tar_pos), Some(input.pos())),
            ));
        }
        if avail.is_empty() || skippable {
            let tail_offset = input.pos();
            let mut tail = avail.to_vec();
            while !input.eof {
                input.start = input.end;
                input.fill(READ_BUF)?;
                tail.extend_from_slice(input.avail());
                if tail.len() as u64 > MAX_TAIL_SIZE {
                    return Err(Some(
                        VerifyError::new(VerifyErrorKind::FrameIndex {
                            reason: format!(
                                "more than {MAX_TAIL_SIZE} bytes follow the data frames"
                            ),
                        })
                        .at(None, Some(tail_offset)),
                    ));
                }
            }
            input.start = input.end;
            out.send(Msg::End {
                frames,
                tail,
                tail_offset,
            })
            .map_err(|_| None)?;
            return Ok(());
        }

        let frame_offset = input.pos();
        let frame_tar = tar_pos;
        let mut chunk_tar = tar_pos;
        let frame_start = filled;
        // zstd does not advance the output position when a frame fails its checksum, but the
        // bytes are written: cleared here, the header they may hold can name the entry.
        let head_end = (frame_start + TAR_BLOCK as usize).min(buf.len());
        buf[frame_start..head_end].fill(0);
        loop {
            let (consumed, hint, pos) = {
                let mut inb = InBuffer::around(&input.buf[input.start..input.end]);
                let mut outb = OutBuffer::around_pos(&mut buf[..], filled);
                let hint = dctx.run(&mut inb, &mut outb);
                (inb.pos(), hint, outb.pos())
            };
            let hint = hint.map_err(|source| {
                if chunk_tar == frame_tar {
                    head.extend_from_slice(&buf[frame_start..head_end]);
                }
                VerifyError::new(VerifyErrorKind::Decompress { source })
                    .at(Some(frame_tar), Some(frame_offset))
            })?;
            input.start += consumed;
            tar_pos += (pos - filled) as u64;
            filled = pos;
            if hint == 0 {
                break;
            }
            if filled == buf.len() {
                hand_over(&mut buf, filled, chunk_tar, frame_offset, out, pool)?;
                filled = 0;
                chunk_tar = tar_pos;
            } else if input.start == input.end || consumed == 0 {
                let have = input.end - input.start;
                input.fill(have + 1)?;
                if input.end - input.start == have {
                    let file_len = input.pos() + have as u64;
                    return Err(Some(
                        VerifyError::new(VerifyErrorKind::Truncated {
                            file_len,
                            what: format!(
                                "in the middle of the zstd frame that starts at byte offset \
                                 {frame_offset}"
                            ),
                        })
                        .at(Some(tar_pos), Some(frame_offset)),
                    ));
                }
            }
        }
        frames.push(FrameInfo {
            compressed_offset: frame_offset,
            compressed_size: input.pos() - frame_offset,
            decompressed_offset: frame_tar,
            decompressed_size: tar_pos - frame_tar,
        });
        if filled > 0 {
            hand_over(&mut buf, filled, chunk_tar, frame_offset, out, pool)?;
            filled = 0;
        }
    }
}

/// Sends `buf[..filled]` (decoded from the frame at `frame_offset`, starting at tar offset
/// `tar_offset`) to the checking thread, and takes a free buffer from the pool in its place.
/// `Err(None)`: the checking thread is gone.
fn hand_over(
    buf: &mut Vec<u8>,
    filled: usize,
    tar_offset: u64,
    frame_offset: u64,
    out: &mpsc::SyncSender<Msg>,
    pool: &mpsc::Receiver<Vec<u8>>,
) -> Result<(), Option<VerifyError>> {
    let next = pool.recv().map_err(|_| None)?;
    let full = std::mem::replace(buf, next);
    out.send(Msg::Data {
        buf: full,
        len: filled,
        tar_offset,
        frame_offset,
    })
    .map_err(|_| None)
}
