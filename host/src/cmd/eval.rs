//! `ember eval`: accuracy, per-class accuracy and confusion matrix of a model
//! on the test set; with `--top-losses K` the worst images (their indices go
//! to `predict --index`), with `--most-confused` the most frequent mistakes.

use anyhow::{bail, Result};
use std::io::Write;

use crate::args::EvalArgs;
use crate::data::{self, Split};
use crate::eval::{confusion, load_model, logits, most_confused, top_losses};
use crate::interrupt;
use crate::par::{capped_threads, Pool};
use crate::report::{self, EvalReport};
use crate::task::Task;
use crate::train::{accuracy, classes_of};

/// `ember eval`.
pub fn run(a: &EvalArgs) -> Result<()> {
    let m = load_model(&a.model)?;
    if let Some(t) = a.task {
        let t: Task = t.into();
        if t != m.task {
            bail!(
                "{} was trained for task {}, not {}",
                a.model.display(),
                m.task.name(),
                t.name()
            );
        }
    }
    let pool = Pool::new(capped_threads(a.threads.threads))?;
    let all = data::fetch_and_load(&data::data_dir(a.data.data.as_deref()), Split::Test)?;
    let index = m.task.kept(&all);
    let test = m.task.filter(&all);
    interrupt::check("eval stopped")?;
    // One pass: int8 blobs' dequantized logits keep the integer decision.
    let l = logits(&m, &pool, &test.images)?;
    let pred = classes_of(m.task, &l, m.outputs());
    interrupt::check("eval stopped")?;
    let acc = accuracy(&pred, &test.labels)?;
    let conf = confusion(m.task, &pred, &test.labels);
    let per: Vec<Option<f64>> = conf
        .iter()
        .enumerate()
        .map(|(c, row)| {
            let n: usize = row.iter().sum();
            (n > 0).then(|| row[c] as f64 / n as f64)
        })
        .collect();
    let top = match a.top_losses {
        Some(k) => Some(top_losses(m.task, &l, &test.labels, &pred, &index, k)?),
        None => None,
    };
    let confused = a.most_confused.map(|k| most_confused(m.task, &conf, k));
    let r = EvalReport {
        accuracy: acc,
        n: test.len(),
        task: m.task.name().into(),
        kind: m.kind.into(),
        per_class_accuracy: per,
        confusion: conf,
        top_losses: top,
        most_confused: confused,
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        write!(out, "{}", report::to_json(&r))?;
        return Ok(());
    }
    print_report(&mut out, a, m.task, &r)
}

fn print_report(out: &mut dyn Write, a: &EvalArgs, task: Task, r: &EvalReport) -> Result<()> {
    writeln!(
        out,
        "{}: {} model, task {}",
        a.model.display(),
        r.kind,
        r.task
    )?;
    writeln!(
        out,
        "accuracy {:.2}% on {} test images",
        100.0 * r.accuracy,
        r.n
    )?;
    writeln!(out, "per class:")?;
    for (c, p) in r.per_class_accuracy.iter().enumerate() {
        let p = p.map_or("     -".into(), |p| format!("{:6.2}%", 100.0 * p));
        writeln!(out, "  {:>2}: {p}", task.class_name(c))?;
    }
    writeln!(
        out,
        "confusion matrix (rows: true class, columns: predicted):"
    )?;
    write!(out, "     ")?;
    for c in 0..task.classes() {
        write!(out, "{:>6}", task.class_name(c))?;
    }
    writeln!(out)?;
    for (c, row) in r.confusion.iter().enumerate() {
        write!(out, "  {:>2} ", task.class_name(c))?;
        for x in row {
            write!(out, "{x:>6}")?;
        }
        writeln!(out)?;
    }
    if let Some(top) = &r.top_losses {
        writeln!(
            out,
            "top losses (index: true -> predicted, loss, probability of the true class):"
        )?;
        for t in top {
            writeln!(
                out,
                "  {:>5}: {} -> {}  loss {:.3}  p {:.4}",
                t.index, t.label, t.predicted, t.loss, t.probability
            )?;
        }
        writeln!(
            out,
            "see one with: ember predict --model {} --index N",
            a.model.display()
        )?;
    }
    if let Some(mc) = &r.most_confused {
        writeln!(out, "most confused (true -> predicted: count):")?;
        for c in mc {
            writeln!(out, "  {} -> {}: {}", c.actual, c.predicted, c.count)?;
        }
    }
    Ok(())
}
