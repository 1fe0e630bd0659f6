//! Prometheus API answers, decoded borrowing from the body. A tick's instant query over 10 000
//! streams is mostly label text: decoding it into owned label maps through the query crate's
//! result enum (which serde buffers whole before reading `resultType`) took 60 % of the tick's
//! CPU. Here the labels are slices of the body, and `result` is read once its type is known.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The envelope of every API answer.
#[derive(Deserialize)]
pub struct Answer<'a> {
    /// `success` or `error`.
    #[serde(borrow)]
    pub status: Text<'a>,
    /// Why the query failed.
    pub error: Option<String>,
    /// The result, when it succeeded.
    #[serde(borrow)]
    pub data: Option<ResultData<'a>>,
}

/// A query's result: its type, and the result itself left undecoded until that is checked.
#[derive(Deserialize)]
pub struct ResultData<'a> {
    /// `vector`, `matrix`, `scalar` or `string`.
    #[serde(rename = "resultType", borrow)]
    pub result_type: Text<'a>,
    /// The result, shaped by its type.
    #[serde(borrow)]
    pub result: &'a RawValue,
}

impl<'a> ResultData<'a> {
    /// The series of an instant vector; None when the result is of another type.
    pub fn vector(&self) -> Option<Result<Vec<VectorSeries<'a>>, serde_json::Error>> {
        (self.result_type.as_str() == "vector").then(|| serde_json::from_str(self.result.get()))
    }

    /// The series of a range vector; None when the result is of another type.
    pub fn matrix(&self) -> Option<Result<Vec<MatrixSeries<'a>>, serde_json::Error>> {
        (self.result_type.as_str() == "matrix").then(|| serde_json::from_str(self.result.get()))
    }
}

/// One series of an instant vector: its labels and its sample at the evaluation time.
#[derive(Debug, Deserialize)]
pub struct VectorSeries<'a> {
    /// The series' labels.
    #[serde(borrow)]
    pub metric: Labels<'a>,
    /// Its sample.
    #[serde(borrow)]
    pub value: Sample<'a>,
}

/// One series of a range vector: its labels and its samples within the range.
#[derive(Debug, Deserialize)]
pub struct MatrixSeries<'a> {
    /// The series' labels.
    #[serde(borrow)]
    pub metric: Labels<'a>,
    /// Its samples, oldest first.
    #[serde(borrow)]
    pub values: Vec<Sample<'a>>,
}

/// A sample: Unix seconds and the value, which Prometheus writes as a string (`"NaN"`, `"+Inf"`).
#[derive(Debug, Deserialize)]
pub struct Sample<'a>(pub f64, #[serde(borrow)] pub Text<'a>);

impl Sample<'_> {
    /// The sample's time, Unix seconds.
    pub fn timestamp(&self) -> f64 {
        self.0
    }

    /// The sample's value; None when its text is not a number.
    pub fn value(&self) -> Option<f64> {
        self.1.as_str().parse().ok()
    }
}

/// A series' labels, in the order of the answer (a handful: a scan beats a map).
#[derive(Debug, Default)]
pub struct Labels<'a>(Vec<(Text<'a>, Text<'a>)>);

impl Labels<'_> {
    /// The value of the label `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(label, _)| label.as_str() == name)
            .map(|(_, value)| value.as_str())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Labels<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LabelsVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for LabelsVisitor<'a> {
            type Value = Labels<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of label names to values")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Labels<'a>, M::Error> {
                let mut labels = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(pair) = map.next_entry::<Text<'a>, Text<'a>>()? {
                    labels.push(pair);
                }
                Ok(Labels(labels))
            }
        }
        deserializer.deserialize_map(LabelsVisitor(std::marker::PhantomData))
    }
}

/// A string of the answer: a slice of the body, or a copy where JSON escapes had to be undone.
#[derive(Debug, Clone, PartialEq)]
pub struct Text<'a>(Cow<'a, str>);

impl Text<'_> {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(text))
            }
            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(text.to_owned()))
            }
            fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(text))
            }
        }
        deserializer.deserialize_str(TextVisitor).map(Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_borrow_from_the_body_unless_escaped() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"scope":"demo","stream":"a\"b"},"value":[1.5,"NaN"]}]}}"#;
        let answer: Answer = serde_json::from_slice(body).unwrap();
        assert_eq!(answer.status.as_str(), "success");
        let data = answer.data.unwrap();
        assert!(data.matrix().is_none(), "a vector is not a matrix");
        let series = data.vector().unwrap().unwrap();
        let labels = &series[0].metric;
        assert!(matches!(labels.0[0].1 .0, Cow::Borrowed("demo")));
        assert_eq!(labels.get("stream"), Some("a\"b"));
        assert_eq!(labels.get("instance"), None);
        assert_eq!(series[0].value.timestamp(), 1.5);
        assert!(series[0].value.value().unwrap().is_nan());
    }

    #[test]
    fn sample_values_are_read_as_prometheus_writes_them() {
        let samples: Vec<Sample> =
            serde_json::from_str(r#"[[1,"3"],[2,"+Inf"],[3,"-Inf"],[4,"2.5e1"],[5,"x"]]"#).unwrap();
        let values: Vec<Option<f64>> = samples.iter().map(Sample::value).collect();
        assert_eq!(
            values,
            vec![
                Some(3.0),
                Some(f64::INFINITY),
                Some(f64::NEG_INFINITY),
                Some(25.0),
                None
            ]
        );
    }

    #[test]
    fn a_range_vector_is_read_with_its_samples() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"instance":"c1"},"values":[[1,"2"],[2,"3"]]}]}}"#;
        let answer: Answer = serde_json::from_slice(body).unwrap();
        let data = answer.data.unwrap();
        assert!(data.vector().is_none());
        let series = data.matrix().unwrap().unwrap();
        assert_eq!(series[0].metric.get("instance"), Some("c1"));
        let samples: Vec<(f64, Option<f64>)> = series[0]
            .values
            .iter()
            .map(|s| (s.timestamp(), s.value()))
            .collect();
        assert_eq!(samples, vec![(1.0, Some(2.0)), (2.0, Some(3.0))]);
    }
}
