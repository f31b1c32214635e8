//! What the event-loop picture and its warnings call each task and branch: the cell's own
//! future, `task fetch("a", 2) (cell:4)` from the spawn's place read in the cell's code, or
//! tokio's task number and the place in a crate when the spawn was not in the cell.

use crate::engine::{BranchTrace, TaskTrace};
use tandem_helpers::kernel_link::events::BLOCKING_TASK_BIT;

/// A task's label.
pub fn task_name(task: &TaskTrace) -> String {
    if task.id == 0 {
        return "the cell's future".to_owned();
    }
    let blocking = task.id & BLOCKING_TASK_BIT != 0;
    let kind = if blocking { "spawn_blocking" } else { "task" };
    let what = match (&task.site.what, blocking) {
        _ if task.name.is_some() => format!("{kind} \"{}\"", task.name.as_deref().unwrap_or("")),
        (Some(what), false) => format!("task {what}"),
        _ if blocking => kind.to_owned(),
        _ => format!("task {}", task.id),
    };
    match (task.site.cell_line, &task.spawned_at) {
        (Some(line), _) => format!("{what} (cell:{line})"),
        (None, Some(place)) => format!("{what} ({})", short_place(place)),
        (None, None) => what,
    }
}

/// A branch's label in a warning: its source text, and its line in the cell.
pub fn branch_name(branch: &BranchTrace) -> String {
    match branch.cell_line {
        Some(line) => format!("{} (cell:{line})", branch.name),
        None => branch.name.clone(),
    }
}

/// `file:line:column` of a spawn place, with the file's last part only.
fn short_place(place: &str) -> String {
    let parts: Vec<&str> = place.rsplitn(3, ':').collect();
    match parts.as_slice() {
        [column, line, file] => {
            let file = file.rsplit('/').next().unwrap_or(file);
            format!("{file}:{line}:{column}")
        }
        _ => place.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Site;

    #[test]
    fn tasks_are_named_by_what_they_spawned_and_where() {
        let mut task = TaskTrace {
            id: 7,
            spawned_at: Some("/x/tokio-1/src/task.rs:12:5".into()),
            ..TaskTrace::default()
        };
        assert_eq!(task_name(&task), "task 7 (task.rs:12:5)");
        task.site = Site {
            what: Some("fetch(\"a\", 2)".into()),
            cell_line: Some(4),
        };
        assert_eq!(task_name(&task), "task fetch(\"a\", 2) (cell:4)");
        task.id |= BLOCKING_TASK_BIT;
        assert_eq!(task_name(&task), "spawn_blocking (cell:4)");
        task.name = Some("orders".into());
        assert_eq!(task_name(&task), "spawn_blocking \"orders\" (cell:4)");
        assert_eq!(task_name(&TaskTrace::default()), "the cell's future");
    }
}
