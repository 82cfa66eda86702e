// Keeps the tasks page live: the server sends its live part (the counts, the rows, the next
// page's link) as a `tasks` event whenever it changes, at most ten times a second.
import { follow } from './swap.js';

const section = document.querySelector('[data-tasks]');
if (section) {
  follow(section, 'tasks');
}
