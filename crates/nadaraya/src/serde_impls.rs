//! Hand-written `serde` impls for the types whose sizes are const generics (`serde` derives
//! arrays only up to 32 elements): [`Sample`], [`Smoother`] and [`MhaWeights`].
//!
//! Arrays are written as flat sequences of `f32` and read back with their length checked, so a
//! document with the wrong shape is an error, never a truncated or zero-padded value. A
//! deserialised [`Smoother`] is rebuilt through [`Smoother::push`]: a NaN or infinite sample,
//! one beyond the storage element's range, or more samples than the capacity `N`, is an error.
//! A half-precision store writes its samples as stored, widened to `f32`: the same document as
//! an `f32` store of those numbers, read back exactly (widening then rounding is the identity),
//! so `half`'s own serde feature is not needed.

use core::fmt;
use core::marker::PhantomData;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Element, MhaWeights, Sample, Smoother};

/// A flat run of floats, serialised as a sequence.
struct Flat<'a>(&'a [f32]);

impl Serialize for Flat<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for v in self.0 {
            seq.serialize_element(v)?;
        }
        seq.end()
    }
}

/// Reads a sequence of exactly `self.0.len()` floats into `self.0`.
struct Fill<'a>(&'a mut [f32]);

impl<'de> DeserializeSeed<'de> for Fill<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Fill<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a sequence of {} numbers", self.0.len())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let n = self.0.len();
        for (i, slot) in self.0.iter_mut().enumerate() {
            match seq.next_element::<f32>()? {
                Some(v) => *slot = v,
                None => return Err(de::Error::invalid_length(i, &self)),
            }
        }
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(n + 1, &self));
        }
        Ok(())
    }
}

/// Deserialises the fields `names` of struct `name` into `slots`.
fn fields<'de, D: Deserializer<'de>, const F: usize>(
    d: D,
    name: &'static str,
    names: &'static [&'static str; F],
    slots: [&mut [f32]; F],
) -> Result<(), D::Error> {
    d.deserialize_struct(name, names, Fields { name, names, slots })
}

/// Reads a struct whose fields are all flat float sequences (`names[k]` into `slots[k]`), from
/// a map (JSON, TOML) or a sequence (bincode-like formats); every field exactly once.
struct Fields<'a, const F: usize> {
    name: &'static str,
    names: &'static [&'static str; F],
    slots: [&'a mut [f32]; F],
}

/// A key, matched against the known names.
struct Key<const F: usize>(&'static [&'static str; F]);

impl<'de, const F: usize> DeserializeSeed<'de> for Key<F> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de, const F: usize> Visitor<'de> for Key<F> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "one of {:?}", self.0)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<usize, E> {
        self.0
            .iter()
            .position(|n| *n == v)
            .ok_or_else(|| de::Error::unknown_field(v, self.0))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<usize, E> {
        usize::try_from(v)
            .ok()
            .filter(|&i| i < F)
            .ok_or_else(|| de::Error::invalid_value(de::Unexpected::Unsigned(v), &self))
    }
}

impl<'de, const F: usize> Visitor<'de> for Fields<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "struct {}", self.name)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        for (i, slot) in self.slots.into_iter().enumerate() {
            if seq.next_element_seed(Fill(slot))?.is_none() {
                return Err(de::Error::invalid_length(i, &"every field"));
            }
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut slots = self.slots.map(Some);
        while let Some(k) = map.next_key_seed(Key(self.names))? {
            let Some(slot) = slots.get_mut(k).and_then(Option::take) else {
                return Err(de::Error::duplicate_field(self.names[k]));
            };
            map.next_value_seed(Fill(slot))?;
        }
        match slots.iter().position(Option::is_some) {
            Some(k) => Err(de::Error::missing_field(self.names[k])),
            None => Ok(()),
        }
    }
}

impl<const D: usize, const DV: usize> Serialize for Sample<D, DV> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Sample", 2)?;
        st.serialize_field("x", &Flat(&self.x))?;
        st.serialize_field("y", &Flat(&self.y))?;
        st.end()
    }
}

impl<'de, const D: usize, const DV: usize> Deserialize<'de> for Sample<D, DV> {
    fn deserialize<De: Deserializer<'de>>(d: De) -> Result<Self, De::Error> {
        let mut s = Self {
            x: [0.0; D],
            y: [0.0; DV],
        };
        fields(d, "Sample", &["x", "y"], [&mut s.x, &mut s.y])?;
        Ok(s)
    }
}

/// Written as `{ w_q, w_k, w_v, w_o }`, each a flat sequence in index order (`w_q[h][i][j]` at
/// `(h·DM + i)·DH + j`); read back with every length checked.
impl<const DM: usize, const H: usize, const DH: usize> Serialize for MhaWeights<DM, H, DH> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("MhaWeights", 4)?;
        st.serialize_field("w_q", &Flat(self.w_q.as_flattened().as_flattened()))?;
        st.serialize_field("w_k", &Flat(self.w_k.as_flattened().as_flattened()))?;
        st.serialize_field("w_v", &Flat(self.w_v.as_flattened().as_flattened()))?;
        st.serialize_field("w_o", &Flat(self.w_o.as_flattened().as_flattened()))?;
        st.end()
    }
}

/// `deserialize_in_place` fills existing weights without a `4·H·DM·DH`-float temporary on the
/// stack: the way to read large weights into a `Box` or a `static`.
impl<'de, const DM: usize, const H: usize, const DH: usize> Deserialize<'de>
    for MhaWeights<DM, H, DH>
{
    fn deserialize<De: Deserializer<'de>>(d: De) -> Result<Self, De::Error> {
        let mut w = Self::zeros();
        Self::deserialize_in_place(d, &mut w)?;
        Ok(w)
    }

    fn deserialize_in_place<De: Deserializer<'de>>(d: De, w: &mut Self) -> Result<(), De::Error> {
        fields(
            d,
            "MhaWeights",
            &["w_q", "w_k", "w_v", "w_o"],
            [
                w.w_q.as_flattened_mut().as_flattened_mut(),
                w.w_k.as_flattened_mut().as_flattened_mut(),
                w.w_v.as_flattened_mut().as_flattened_mut(),
                w.w_o.as_flattened_mut().as_flattened_mut(),
            ],
        )
    }
}

/// The samples of a smoother, oldest first, as a sequence.
struct Samples<'a, K, const N: usize, const D: usize, const DV: usize, E: Element>(
    &'a Smoother<K, N, D, DV, E>,
);

impl<K: crate::Kernel, const N: usize, const D: usize, const DV: usize, E: Element> Serialize
    for Samples<'_, K, N, D, DV, E>
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for sample in self.0.iter() {
            seq.serialize_element(&sample)?;
        }
        seq.end()
    }
}

/// Written as `{ kernel, samples }`, the samples oldest first (as stored, widened to `f32`).
impl<K, const N: usize, const D: usize, const DV: usize, E: Element> Serialize
    for Smoother<K, N, D, DV, E>
where
    K: crate::Kernel + Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Smoother", 2)?;
        st.serialize_field("kernel", self.kernel())?;
        st.serialize_field("samples", &Samples(self))?;
        st.end()
    }
}

/// Read back through [`Smoother::push`] in order: more than `N` samples, or a NaN or infinite
/// one, or one beyond the range of `E`, is an error (with the core's [`Error`](crate::Error) as
/// its message), never a silently shortened store.
impl<'de, K, const N: usize, const D: usize, const DV: usize, E: Element> Deserialize<'de>
    for Smoother<K, N, D, DV, E>
where
    K: crate::Kernel + Deserialize<'de>,
{
    fn deserialize<De: Deserializer<'de>>(d: De) -> Result<Self, De::Error> {
        d.deserialize_struct(
            "Smoother",
            &["kernel", "samples"],
            SmootherVisitor::<K, N, D, DV, E>(PhantomData),
        )
    }
}

struct SmootherVisitor<K, const N: usize, const D: usize, const DV: usize, E>(PhantomData<(K, E)>);

/// The samples, read into a fixed-capacity vector: more than `N` is an error.
struct SampleSeq<const N: usize, const D: usize, const DV: usize>(heapless::Vec<Sample<D, DV>, N>);

impl<'de, const N: usize, const D: usize, const DV: usize> Deserialize<'de>
    for SampleSeq<N, D, DV>
{
    fn deserialize<De: Deserializer<'de>>(d: De) -> Result<Self, De::Error> {
        struct V<const N: usize, const D: usize, const DV: usize>;
        impl<'de, const N: usize, const D: usize, const DV: usize> Visitor<'de> for V<N, D, DV> {
            type Value = SampleSeq<N, D, DV>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "at most {N} samples")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut v = heapless::Vec::new();
                while let Some(s) = seq.next_element::<Sample<D, DV>>()? {
                    if v.push(s).is_err() {
                        return Err(de::Error::custom(crate::Error::CapacityExceeded));
                    }
                }
                Ok(SampleSeq(v))
            }
        }
        d.deserialize_seq(V)
    }
}

impl<K, const N: usize, const D: usize, const DV: usize, E: Element> SmootherVisitor<K, N, D, DV, E>
where
    K: crate::Kernel,
{
    fn build<Er: de::Error>(
        kernel: K,
        samples: SampleSeq<N, D, DV>,
    ) -> Result<Smoother<K, N, D, DV, E>, Er> {
        let mut s = Smoother::new(kernel);
        for sample in samples.0 {
            s.push(sample.x, sample.y)
                .map_err(|r| Er::custom(r.error))?;
        }
        Ok(s)
    }
}

impl<'de, K, const N: usize, const D: usize, const DV: usize, E: Element> Visitor<'de>
    for SmootherVisitor<K, N, D, DV, E>
where
    K: crate::Kernel + Deserialize<'de>,
{
    type Value = Smoother<K, N, D, DV, E>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct Smoother")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let kernel = seq
            .next_element::<K>()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let samples = seq
            .next_element::<SampleSeq<N, D, DV>>()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        Self::build(kernel, samples)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        const NAMES: &[&str; 2] = &["kernel", "samples"];
        let (mut kernel, mut samples) = (None, None);
        while let Some(k) = map.next_key_seed(Key(NAMES))? {
            match k {
                0 if kernel.is_none() => kernel = Some(map.next_value::<K>()?),
                1 if samples.is_none() => samples = Some(map.next_value::<SampleSeq<N, D, DV>>()?),
                _ => return Err(de::Error::duplicate_field(NAMES[k])),
            }
        }
        let kernel = kernel.ok_or_else(|| de::Error::missing_field("kernel"))?;
        let samples = samples.ok_or_else(|| de::Error::missing_field("samples"))?;
        Self::build(kernel, samples)
    }
}
