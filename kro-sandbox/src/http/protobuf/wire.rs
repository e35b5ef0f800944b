//! The protobuf wire format: varints, tags and length-delimited fields.

use super::ProtoError;

/// How a field's value is laid out on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireType {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

impl WireType {
    fn of(bits: u64) -> Result<Self, ProtoError> {
        match bits {
            0 => Ok(Self::Varint),
            1 => Ok(Self::Fixed64),
            2 => Ok(Self::Len),
            5 => Ok(Self::Fixed32),
            other => Err(ProtoError::Malformed(format!(
                "unsupported wire type {other}"
            ))),
        }
    }

    fn bits(self) -> u64 {
        match self {
            Self::Varint => 0,
            Self::Fixed64 => 1,
            Self::Len => 2,
            Self::Fixed32 => 5,
        }
    }
}

/// One field as read from the wire.
#[derive(Debug, Clone, Copy)]
pub enum Raw<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

/// Reads the fields of one message in order.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Whether the whole message was read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// One value of a packed run.
    pub fn packed(&mut self, wire: WireType) -> Result<Raw<'a>, ProtoError> {
        Ok(match wire {
            WireType::Fixed64 => {
                let b = self.take(8)?;
                Raw::Fixed64(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            }
            WireType::Fixed32 => {
                let b = self.take(4)?;
                Raw::Fixed32(u32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
            }
            _ => Raw::Varint(self.varint()?),
        })
    }

    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut value = 0u64;
        for (i, &b) in self.buf.iter().enumerate().take(10) {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        Err(ProtoError::Malformed("truncated varint".into()))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        if n > self.buf.len() {
            return Err(ProtoError::Malformed("field runs past the message".into()));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// The next field number and value, or `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<(u32, Raw<'a>)>, ProtoError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3)
            .map_err(|_| ProtoError::Malformed("field number out of range".into()))?;
        let raw = match WireType::of(key & 7)? {
            WireType::Varint => Raw::Varint(self.varint()?),
            w @ (WireType::Fixed64 | WireType::Fixed32) => self.packed(w)?,
            WireType::Len => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| ProtoError::Malformed("length out of range".into()))?;
                Raw::Bytes(self.take(len)?)
            }
        };
        Ok(Some((number, raw)))
    }
}

/// Appends a varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a field key.
pub fn put_key(out: &mut Vec<u8>, number: u32, wire: WireType) {
    put_varint(out, (u64::from(number) << 3) | wire.bits());
}

/// Appends a length-delimited field.
pub fn put_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_key(out, number, WireType::Len);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_including_negative_int32() {
        for v in [0u64, 1, 127, 128, 300, u64::MAX, (-1i64) as u64] {
            let mut out = Vec::new();
            put_key(&mut out, 7, WireType::Varint);
            put_varint(&mut out, v);
            let mut r = Reader::new(&out);
            match r.next_field() {
                Ok(Some((7, Raw::Varint(got)))) => assert_eq!(got, v),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn truncated_input_is_an_error() {
        let mut r = Reader::new(&[0x0a, 0x05, b'a']);
        assert!(r.next_field().is_err());
    }
}
