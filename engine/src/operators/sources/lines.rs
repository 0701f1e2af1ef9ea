//! Reading text lines with a bound on their length.
//!
//! `read_until` keeps a whole line in memory, however long: one 196 MB
//! line took gigabytes once split into words. This reader keeps at most
//! the limit of a line; a longer one is reported once, when it passes the
//! limit, and then read past to its end without being kept, so memory stays
//! bounded and the byte count of every line, kept or not, stays exact for
//! sources that checkpoint an offset.

use std::io::{BufRead, ErrorKind};

/// What [`LineReader::next`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A whole line, in [`LineReader::line`]; `len` bytes of input with
    /// its newline.
    Line { len: u64 },
    /// The line being read has just passed the limit. The reader skips the
    /// rest of it and reports its end as [`Next::Skipped`].
    TooLong,
    /// The end of a line that was too long: `len` bytes of input with its
    /// newline, none of them kept.
    Skipped { len: u64 },
    /// Nothing more to read for now. The start of a line may be held,
    /// to be completed by later input or ended by [`LineReader::finish`].
    Empty,
}

pub struct LineReader {
    max: usize,
    line: Vec<u8>,
    /// Input bytes of the line being read, kept or not.
    len: u64,
    state: State,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Keeping the bytes of a line (none yet, or its start).
    Keeping,
    /// Reading past a line reported too long.
    Skipping,
    /// A line reported too long has ended: its [`Next::Skipped`] is next.
    SkippedToEnd,
    /// `line` is the last line returned; the next read starts afresh.
    Returned,
}

impl LineReader {
    /// A reader that keeps lines of at most `max` bytes, line ending
    /// (`\n` or `\r\n`) not counted.
    pub fn new(max: u32) -> LineReader {
        LineReader {
            max: max as usize,
            line: Vec::new(),
            len: 0,
            state: State::Keeping,
        }
    }

    /// The line of the last [`Next::Line`], with its line ending if it had one.
    pub fn line(&self) -> &[u8] {
        &self.line
    }

    /// Reads on to the end of the next line, or to the end of what `input`
    /// has now. An error (a read timeout, say) leaves the line held, to be
    /// continued by the next call.
    pub fn next(&mut self, input: &mut impl BufRead) -> std::io::Result<Next> {
        match self.state {
            State::Returned => self.forget(),
            State::SkippedToEnd => return Ok(self.skipped()),
            State::Keeping | State::Skipping => {}
        }
        loop {
            let available = match input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                return Ok(Next::Empty);
            }
            let newline = memchr::memchr(b'\n', available);
            let take = newline.map_or(available.len(), |i| i + 1);
            if self.state == State::Keeping {
                // Room for the limit and a `\r\n`: one byte more is too long.
                let room = (self.max + 3).saturating_sub(self.line.len());
                self.line.extend_from_slice(&available[..take.min(room)]);
            }
            input.consume(take);
            self.len += take as u64;
            if newline.is_some() {
                return Ok(self.end());
            }
            if self.state == State::Keeping && self.over() {
                self.state = State::Skipping;
                self.line = Vec::new();
                return Ok(Next::TooLong);
            }
        }
    }

    /// Ends the input: a line held without its newline is the last one.
    /// [`Next::Empty`] when nothing is held.
    pub fn finish(&mut self) -> Next {
        match self.state {
            State::SkippedToEnd => self.skipped(),
            State::Returned => Next::Empty,
            _ if self.len == 0 => Next::Empty,
            _ => self.end(),
        }
    }

    /// Drops whatever is held, as when a connection is lost.
    pub fn forget(&mut self) {
        self.line.clear();
        self.len = 0;
        self.state = State::Keeping;
    }

    /// The end of the line being read.
    fn end(&mut self) -> Next {
        match self.state {
            State::Skipping => self.skipped(),
            _ if self.over() => {
                // Too long, though read whole: reported now, skipped next.
                self.state = State::SkippedToEnd;
                self.line = Vec::new();
                Next::TooLong
            }
            _ => {
                self.state = State::Returned;
                Next::Line { len: self.len }
            }
        }
    }

    fn skipped(&mut self) -> Next {
        self.state = State::Returned;
        Next::Skipped { len: self.len }
    }

    /// Whether the line held is longer than the limit, its ending aside.
    fn over(&self) -> bool {
        let content = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        content.len() > self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::{BufReader, Read};

    /// Input in the given pieces, each followed by a would-block error, as
    /// a socket with a read timeout gives it.
    struct Trickle {
        pieces: Vec<Vec<u8>>,
        next: usize,
        blocked: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if !self.blocked && self.next < self.pieces.len() {
                self.blocked = true;
                return Err(ErrorKind::WouldBlock.into());
            }
            self.blocked = false;
            let Some(piece) = self.pieces.get_mut(self.next) else {
                return Ok(0);
            };
            let n = piece.len().min(buf.len());
            buf[..n].copy_from_slice(&piece[..n]);
            piece.drain(..n);
            if piece.is_empty() {
                self.next += 1;
            }
            Ok(n)
        }
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Event {
        Line(Vec<u8>, u64),
        TooLong,
        Skipped(u64),
    }

    /// What a reader must report for `input`, by splitting it whole.
    fn model(input: &[u8], max: usize) -> Vec<Event> {
        let mut out = Vec::new();
        let mut rest = input;
        while !rest.is_empty() {
            let end = rest
                .iter()
                .position(|b| *b == b'\n')
                .map_or(rest.len(), |i| i + 1);
            let (line, after) = rest.split_at(end);
            let content = line.strip_suffix(b"\n").unwrap_or(line);
            let content = content.strip_suffix(b"\r").unwrap_or(content);
            if content.len() > max {
                out.extend([Event::TooLong, Event::Skipped(line.len() as u64)]);
            } else {
                out.push(Event::Line(line.to_vec(), line.len() as u64));
            }
            rest = after;
        }
        out
    }

    fn read_all(input: &[u8], max: u32, pieces: usize, capacity: usize) -> Vec<Event> {
        let size = input.len().div_ceil(pieces.max(1)).max(1);
        let trickle = Trickle {
            pieces: input.chunks(size).map(<[u8]>::to_vec).collect(),
            next: 0,
            blocked: false,
        };
        let mut input = BufReader::with_capacity(capacity, trickle);
        let mut reader = LineReader::new(max);
        let mut events = Vec::new();
        loop {
            let next = match reader.next(&mut input) {
                Ok(Next::Empty) => reader.finish(),
                Ok(next) => next,
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => panic!("{e}"),
            };
            match next {
                Next::Empty => return events,
                Next::Line { len } => events.push(Event::Line(reader.line().to_vec(), len)),
                Next::TooLong => events.push(Event::TooLong),
                Next::Skipped { len } => events.push(Event::Skipped(len)),
            }
            assert!(reader.line.capacity() <= (max as usize + 3).max(capacity) + 64);
        }
    }

    proptest! {
        /// However the input arrives, every line is reported once, kept
        /// when within the limit, and byte counts add up to the input.
        #[test]
        fn lines_match_a_whole_split(
            input in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'a'), any::<u8>()], 0..300),
            max in 0u32..20,
            pieces in 1usize..12,
            capacity in 1usize..16,
        ) {
            prop_assert_eq!(read_all(&input, max, pieces, capacity), model(&input, max as usize));
        }
    }

    #[test]
    fn a_line_at_the_limit_is_kept_with_either_ending() {
        for (input, max) in [(&b"abc\n"[..], 3), (b"abc\r\n", 3), (b"abc", 3)] {
            assert_eq!(
                read_all(input, max, 1, 8),
                [Event::Line(input.to_vec(), input.len() as u64)]
            );
        }
        assert_eq!(
            read_all(b"abcd\nef\n", 3, 1, 8),
            [
                Event::TooLong,
                Event::Skipped(5),
                Event::Line(b"ef\n".to_vec(), 3)
            ]
        );
    }

    /// A long line is reported when it passes the limit, before its end
    /// arrives: a socket that never sends a newline is not read forever
    /// in silence.
    #[test]
    fn a_long_line_is_reported_before_its_end() {
        let mut input = BufReader::with_capacity(4, &b"abcdefgh"[..]);
        let mut reader = LineReader::new(2);
        assert_eq!(reader.next(&mut input).unwrap(), Next::TooLong);
        assert_eq!(reader.next(&mut input).unwrap(), Next::Empty);
        assert_eq!(reader.finish(), Next::Skipped { len: 8 });
        assert_eq!(reader.finish(), Next::Empty);
    }
}
