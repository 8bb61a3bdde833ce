//! `nonneg._nonneg`: thin bindings of the nonneg library for the Python package. Arrays
//! arrive as raw little-endian buffers (NumPy's `tobytes()`), options as a JSON object
//! with `nonneg train`'s option names; everything else is the library's: the data checks
//! ([`nonneg::pipeline::arrays`]), training ([`nonneg::pipeline::fit`]), the model file,
//! certificates, attacks and featurizers. Training and prediction release the GIL.

mod options;

use nonneg::data::Dataset;
use nonneg::features::corpus::SpecSource;
use nonneg::features::docs::{featurize_docs, Doc};
use nonneg::pipeline::arrays::{self, Labels};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// The library's error as the Python exception of its kind.
fn py_err(e: nonneg::Error) -> PyErr {
    match e {
        nonneg::Error::Io { .. } => PyOSError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

fn f32s(b: &[u8], what: &str) -> PyResult<Vec<f32>> {
    if b.len() % 4 != 0 {
        return Err(PyValueError::new_err(format!(
            "{what}: {} bytes is not a whole number of float32 values",
            b.len()
        )));
    }
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// A feature matrix with optional labels, checked by the library.
#[pyclass(frozen, module = "nonneg._nonneg")]
struct Data {
    inner: Arc<Dataset>,
}

/// Labels from a float32 buffer `[rows x names.len()]`.
fn labels(y: Option<&[u8]>, names: Vec<String>) -> PyResult<Option<Labels>> {
    y.map(|b| {
        Ok(Labels {
            y: f32s(b, "y")?,
            names,
        })
    })
    .transpose()
}

#[pymethods]
impl Data {
    /// A row-major float32 matrix.
    #[staticmethod]
    #[pyo3(signature = (rows, cols, values, y=None, label_names=vec![], feature_names=None))]
    fn dense(
        rows: usize,
        cols: usize,
        values: &[u8],
        y: Option<&[u8]>,
        label_names: Vec<String>,
        feature_names: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let x = f32s(values, "X")?;
        let d = arrays::dense(rows, cols, x, labels(y, label_names)?, feature_names);
        Ok(Data {
            inner: Arc::new(d.map_err(py_err)?),
        })
    }

    /// CSR parts: int64 `indptr`, uint32 `indices`, float32 `values`.
    #[staticmethod]
    #[pyo3(signature = (cols, indptr, indices, values, y=None, label_names=vec![], feature_names=None))]
    fn csr(
        cols: usize,
        indptr: &[u8],
        indices: &[u8],
        values: &[u8],
        y: Option<&[u8]>,
        label_names: Vec<String>,
        feature_names: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let indptr = indptr
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")) as usize)
            .collect();
        let indices = indices
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        let x = f32s(values, "X")?;
        let d = arrays::csr(
            cols,
            indptr,
            indices,
            x,
            labels(y, label_names)?,
            feature_names,
        );
        Ok(Data {
            inner: Arc::new(d.map_err(py_err)?),
        })
    }

    #[getter]
    fn rows(&self) -> usize {
        self.inner.rows()
    }
}

/// A fitted model: the same content as the CLI's `.safetensors` file.
#[pyclass(frozen, module = "nonneg._nonneg")]
struct Model {
    inner: nonneg::model::Model,
}

#[pymethods]
impl Model {
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Self> {
        let inner = nonneg::model::io::load(&path).map_err(py_err)?;
        Ok(Model { inner })
    }

    #[staticmethod]
    fn from_bytes(bytes: &[u8]) -> PyResult<Self> {
        let inner = nonneg::model::io::from_bytes(bytes, Path::new("<bytes>")).map_err(py_err)?;
        Ok(Model { inner })
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = nonneg::model::io::to_bytes(&self.inner).map_err(py_err)?;
        Ok(PyBytes::new(py, &b))
    }

    fn save(&self, path: PathBuf) -> PyResult<()> {
        nonneg::model::io::save(&self.inner, &path).map_err(py_err)
    }

    /// Logits `[rows x labels]` as a float32 buffer (GIL released).
    fn logits<'py>(&self, py: Python<'py>, data: &Data) -> PyResult<Bound<'py, PyBytes>> {
        let (m, d) = (&self.inner, &data.inner);
        if d.x.cols() != m.mlp.input_dim {
            return Err(PyValueError::new_err(format!(
                "X has {} features, the model takes {}",
                d.x.cols(),
                m.mlp.input_dim
            )));
        }
        let z = py.allow_threads(|| m.logits(&d.x));
        let bytes: Vec<u8> = z.iter().flat_map(|v| v.to_le_bytes()).collect();
        Ok(PyBytes::new(py, &bytes))
    }

    /// The certificate as JSON; `features`: the attacker's features (names or indices).
    #[pyo3(signature = (features=None))]
    fn certify(&self, features: Option<Vec<String>>) -> PyResult<String> {
        let declared = features
            .map(|f| {
                nonneg::certify::resolve_features(&self.inner, &f.join("\n"), Path::new("features"))
            })
            .transpose()
            .map_err(py_err)?;
        let cert = nonneg::certify::certify(&self.inner, declared.as_deref());
        serde_json::to_string(&cert).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// The attack report as JSON (GIL released).
    #[pyo3(signature = (data, method, budgets, limit=None, seed=0))]
    fn attack(
        &self,
        py: Python<'_>,
        data: &Data,
        method: &str,
        budgets: Vec<usize>,
        limit: Option<usize>,
        seed: u64,
    ) -> PyResult<String> {
        let method = options::parse_method(method).map_err(py_err)?;
        let mut cfg = nonneg::attack::AttackConfig::new(method, budgets);
        cfg.limit = limit;
        cfg.seed = seed;
        let (m, d) = (&self.inner, &data.inner);
        let report = py
            .allow_threads(|| nonneg::attack::attack(m, d, &cfg))
            .map_err(py_err)?;
        serde_json::to_string(&report).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// Writes the model as an ONNX graph (`nonneg export --onnx`), atomically.
    fn save_onnx(&self, path: PathBuf) -> PyResult<()> {
        nonneg::export::onnx::save_onnx(&self.inner, &path).map_err(py_err)
    }

    #[getter]
    fn n_features(&self) -> usize {
        self.inner.mlp.input_dim
    }

    #[getter]
    fn n_labels(&self) -> usize {
        self.inner.mlp.n_labels()
    }

    #[getter]
    fn threshold(&self) -> Vec<f32> {
        self.inner.threshold.clone()
    }

    #[getter]
    fn feature_names(&self) -> Option<Vec<String>> {
        self.inner.feature_names.clone()
    }

    #[getter]
    fn label_names(&self) -> Vec<String> {
        self.inner.label_names.clone()
    }

    /// The training record (JSON), as stored in the file.
    #[getter]
    fn training(&self) -> String {
        self.inner.training.to_string()
    }

    /// A copy with `training[key] = value` (JSON): what the Python side records in the file.
    fn with_record(&self, key: &str, value: &str) -> PyResult<Self> {
        let v: serde_json::Value =
            serde_json::from_str(value).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let mut inner = self.inner.clone();
        if !inner.training.is_object() {
            inner.training = serde_json::json!({});
        }
        inner.training[key] = v;
        Ok(Model { inner })
    }
}

/// What the training thread sends back.
enum Msg {
    Epoch(String),
    Done(Box<nonneg::Result<nonneg::pipeline::Fitted>>),
}

/// Trains on `data` with the options of `nonneg train` (JSON). Runs on a thread of its
/// own while this one, GIL released, waits and checks for signals: on Ctrl-C it raises
/// the signal's exception once training has stopped (before its next batch).
#[pyfunction]
#[pyo3(signature = (params, data, verbose=false, featurizer=None))]
fn fit(
    py: Python<'_>,
    params: &str,
    data: &Data,
    verbose: bool,
    featurizer: Option<&str>,
) -> PyResult<Model> {
    let job = options::Job::new(params, &data.inner, featurizer).map_err(py_err)?;
    let stop = job.stop();
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("nonneg-fit".into())
        .spawn(move || {
            let progress = tx.clone();
            let result = job.run(&mut |line| {
                // The receiver is gone after an interrupt: nobody to tell.
                let _ = progress.send(Msg::Epoch(line));
            });
            let _ = tx.send(Msg::Done(Box::new(result)));
        })
        .map_err(|e| PyOSError::new_err(format!("cannot start the training thread: {e}")))?;
    let mut rx = rx;
    loop {
        // The receiver goes into the GIL-free closure and back (it is not `Sync`).
        let (msg, back) =
            py.allow_threads(move || (rx.recv_timeout(Duration::from_millis(50)), rx));
        rx = back;
        match msg {
            Ok(Msg::Done(r)) => {
                let fitted = (*r).map_err(py_err)?;
                return Ok(Model {
                    inner: fitted.model,
                });
            }
            Ok(Msg::Epoch(line)) if verbose => {
                let written = py
                    .import("sys")
                    .and_then(|sys| sys.getattr("stderr"))
                    .and_then(|err| err.call_method1("write", (line + "\n",)));
                if let Err(e) = written {
                    stop();
                    return Err(e);
                }
            }
            Ok(Msg::Epoch(_)) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(PyOSError::new_err(
                    "the training thread ended without a result",
                ));
            }
        }
        if let Err(signal) = py.check_signals() {
            stop();
            // The run ends before its next batch; its result (interrupted) is dropped.
            py.allow_threads(move || while let Ok(Msg::Epoch(_)) = rx.recv() {});
            return Err(signal);
        }
    }
}

/// A text featurizer fitted on `docs` (JSON options) or given (spec JSON); returns the
/// spec JSON and the CSR parts (indptr int64, indices uint32, values float32) and width.
#[pyfunction]
#[pyo3(signature = (docs, spec=None, options=None))]
fn featurize_text<'py>(
    py: Python<'py>,
    docs: Vec<Bound<'py, PyAny>>,
    spec: Option<&str>,
    options: Option<&str>,
) -> PyResult<(String, usize, Vec<Bound<'py, PyBytes>>)> {
    let docs = docs
        .iter()
        .map(|d| {
            if let Ok(s) = d.downcast::<PyString>() {
                Ok(Doc::Raw(s.to_cow()?.as_bytes().to_vec()))
            } else if let Ok(b) = d.downcast::<PyBytes>() {
                Ok(Doc::Raw(b.as_bytes().to_vec()))
            } else {
                Ok(Doc::Path(d.extract::<PathBuf>()?))
            }
        })
        .collect::<PyResult<Vec<Doc>>>()?;
    let source = match (spec, options) {
        (Some(s), _) => SpecSource::Fixed(options::parse_spec(s).map_err(py_err)?),
        (None, Some(o)) => options::text_source(o).map_err(py_err)?,
        (None, None) => return Err(PyValueError::new_err("give a spec or options")),
    };
    let (spec, x) = py
        .allow_threads(|| featurize_docs(source, docs))
        .map_err(py_err)?;
    let json = serde_json::to_string(&spec).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let indptr: Vec<u8> = x
        .indptr
        .iter()
        .flat_map(|&v| (v as u64).to_le_bytes())
        .collect();
    let indices: Vec<u8> = x.indices.iter().flat_map(|v| v.to_le_bytes()).collect();
    let values: Vec<u8> = x.values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let parts = [indptr, indices, values].map(|b| PyBytes::new(py, &b));
    Ok((json, x.cols, parts.into()))
}

#[pymodule]
fn _nonneg(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Data>()?;
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(featurize_text, m)?)?;
    Ok(())
}
