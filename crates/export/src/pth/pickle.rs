//! The pickle opcodes (protocol 2, what `torch.save` uses) that a checkpoint needs, and
//! nothing that `torch.load(weights_only=True)` would refuse.

use serde_json::Value;

pub struct Pickler {
    pub out: Vec<u8>,
}

impl Pickler {
    pub fn new() -> Self {
        Pickler {
            out: vec![0x80, 2], // PROTO 2
        }
    }

    pub fn stop(mut self) -> Vec<u8> {
        self.out.push(b'.');
        self.out
    }

    fn op(&mut self, op: u8) -> &mut Self {
        self.out.push(op);
        self
    }

    pub fn mark(&mut self) -> &mut Self {
        self.op(b'(')
    }

    /// The items since the last mark into a tuple.
    pub fn tuple(&mut self) -> &mut Self {
        self.op(b't')
    }

    pub fn empty_tuple(&mut self) -> &mut Self {
        self.op(b')')
    }

    pub fn empty_dict(&mut self) -> &mut Self {
        self.op(b'}')
    }

    /// The key / value pairs since the last mark into the dict below them.
    pub fn setitems(&mut self) -> &mut Self {
        self.op(b'u')
    }

    /// Calls the callable below the argument tuple on top.
    pub fn reduce(&mut self) -> &mut Self {
        self.op(b'R')
    }

    /// The object on top is a persistent id (`torch.load` resolves storages through it).
    pub fn persistent_id(&mut self) -> &mut Self {
        self.op(b'Q')
    }

    /// `module.name`, e.g. `collections.OrderedDict`.
    pub fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.op(b'c');
        self.out
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.op(b'X');
        self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
        self
    }

    pub fn int(&mut self, v: i64) -> &mut Self {
        match i32::try_from(v) {
            Ok(v) => {
                self.op(b'J'); // BININT
                self.out.extend_from_slice(&v.to_le_bytes());
            }
            Err(_) => {
                self.op(0x8a).op(8); // LONG1, 8 bytes two's complement
                self.out.extend_from_slice(&v.to_le_bytes());
            }
        }
        self
    }

    pub fn float(&mut self, v: f64) -> &mut Self {
        self.op(b'G'); // BINFLOAT, big-endian
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.op(if v { 0x88 } else { 0x89 })
    }

    /// A tuple of ints (sizes, strides).
    pub fn int_tuple(&mut self, values: &[usize]) -> &mut Self {
        self.mark();
        for &v in values {
            self.int(v as i64);
        }
        self.tuple()
    }

    /// JSON as Python: dict, list, str, int, float, bool, None.
    pub fn json(&mut self, v: &Value) -> &mut Self {
        match v {
            Value::Null => self.op(b'N'),
            Value::Bool(b) => self.bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => self.int(i),
                None => self.float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => self.str(s),
            Value::Array(items) => {
                self.op(b']').mark(); // EMPTY_LIST, then APPENDS
                items.iter().for_each(|i| {
                    self.json(i);
                });
                self.op(b'e')
            }
            Value::Object(map) => {
                self.empty_dict().mark();
                for (k, v) in map {
                    self.str(k).json(v);
                }
                self.setitems()
            }
        }
    }
}
