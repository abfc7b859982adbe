//! The `#Fields` table of any log with such a directive (IIS's W3C logs,
//! Exchange's HttpProxy CSV logs): the column names as the log states them,
//! and where the well-known columns of the format sit. Each format brings
//! its own list of well-known fields ([`KnownField`]); the table is the same.

use std::marker::PhantomData;
use std::sync::Arc;

/// The well-known columns of one log format: an enum whose `as usize` values
/// run from 0 to the table size `N` of [`FieldTable`].
pub trait KnownField: Copy + 'static {
    /// The well-known field a column name denotes (case-insensitively).
    fn from_name(name: &str) -> Option<Self>;

    /// Its slot in the table: `self as usize`, below `N`.
    fn slot(self) -> usize;

    /// The column names of a `#Fields` directive's value, as written.
    fn column_names(directive_value: &[u8]) -> Vec<String>;
}

#[derive(Debug, PartialEq, Eq)]
struct Inner<const N: usize> {
    names: Vec<String>,
    known: [Option<u32>; N],
    /// `(first, again)`: column `again` repeats the name, or the well-known
    /// field, of column `first`.
    repeated: Vec<(u32, u32)>,
}

/// The `#Fields` table in force, for the well-known fields `K` (`N` of
/// them). Cloning is a reference-count increment.
#[derive(Debug, PartialEq, Eq)]
pub struct FieldTable<K, const N: usize>(Arc<Inner<N>>, PhantomData<K>);

impl<K, const N: usize> Clone for FieldTable<K, N> {
    fn clone(&self) -> Self {
        FieldTable(Arc::clone(&self.0), PhantomData)
    }
}

impl<K: KnownField, const N: usize> FieldTable<K, N> {
    /// Parses the text after `#Fields:` (see [`KnownField::column_names`]).
    pub fn parse(directive_value: &[u8]) -> Self {
        Self::from_names(K::column_names(directive_value))
    }

    /// The table of these column names, in order.
    pub fn from_names(names: Vec<String>) -> Self {
        let mut known = [None; N];
        let mut repeated = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let field = K::from_name(name);
            // The first column of a name wins if a table repeats it: it is
            // the one `index_of` finds too.
            let first = match field {
                Some(f) => *known[f.slot()].get_or_insert(i as u32),
                None => names.iter().position(|n| n.eq_ignore_ascii_case(name)).unwrap_or(i) as u32,
            };
            if first != i as u32 {
                repeated.push((first, i as u32));
            }
        }
        FieldTable(Arc::new(Inner { names, known, repeated }), PhantomData)
    }

    /// Columns that repeat an earlier column's name (case-insensitively) or
    /// well-known field (`X-Forwarded-For` and `cs(X-Forwarded-For)`), as
    /// `(first, again)`: the first is the one read.
    pub fn repeated(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.0.repeated.iter().map(|&(first, again)| (first as usize, again as usize))
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.0.names.len()
    }

    /// True when the directive named no column.
    pub fn is_empty(&self) -> bool {
        self.0.names.is_empty()
    }

    /// Column of a field name, compared case-insensitively (ASCII).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.0.names.iter().position(|n| n.eq_ignore_ascii_case(name))
    }

    /// Column of a well-known field, if logged.
    #[inline]
    pub fn index(&self, field: K) -> Option<usize> {
        self.0.known[field.slot()].map(|i| i as usize)
    }

    /// Column names in order, as written in the directive.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.names.iter().map(String::as_str)
    }
}

/// Declares the well-known fields of a `#Fields` format: the enum with
/// `COUNT`, `ALL`, `name` and `from_name` (case-insensitive, over every name
/// a field goes by, `Field = "name" | "other name"`), and its [`KnownField`]
/// impl, whose directive is split into names by the function after `split`.
#[macro_export]
macro_rules! known_fields {
    (
        $(#[$meta:meta])*
        pub enum $name:ident split $split:path {
            $($(#[$vmeta:meta])* $variant:ident = $first:literal $(| $alias:literal)*,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// Number of well-known fields.
            pub const COUNT: usize = [$($name::$variant),*].len();

            /// Every well-known field, in declaration order (`ALL[f as usize] == f`).
            pub const ALL: [$name; $name::COUNT] = [$($name::$variant),*];

            /// The column name as the log writes it.
            pub fn name(self) -> &'static str {
                self.aliases()[0]
            }

            /// All names this field is recognised under (compared case-insensitively).
            fn aliases(self) -> &'static [&'static str] {
                match self {
                    $($name::$variant => &[$first $(, $alias)*],)*
                }
            }

            /// The field a column name denotes, compared case-insensitively (ASCII).
            pub fn from_name(name: &str) -> Option<$name> {
                $name::ALL.into_iter().find(|f| f.aliases().iter().any(|a| a.eq_ignore_ascii_case(name)))
            }
        }

        impl $crate::KnownField for $name {
            fn from_name(name: &str) -> Option<$name> {
                $name::from_name(name)
            }

            #[inline]
            fn slot(self) -> usize {
                self as usize
            }

            fn column_names(directive_value: &[u8]) -> Vec<String> {
                $split(directive_value)
            }
        }
    };
}
