// Keeps the tasks page live: the server sends its live part (the counts, the rows, the next
// page's link) as a `tasks` event whenever it changes, at most ten times a second; a task's
// page gets its details as a `task` event every second while the task runs.
import { follow } from './swap.js';

const section = document.querySelector('[data-tasks]');
if (section) {
  follow(section, 'tasks');
}

// A task's page follows the task until it has ended (the part sent says data-ended).
const task = document.querySelector('[data-task-live]');
if (task) {
  const source = follow(task, 'task');
  if (source) {
    source.addEventListener('task', () => {
      if (task.querySelector('[data-ended]')) source.close();
    });
  }
}
