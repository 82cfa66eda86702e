// Keeps the workers pages live: /workers/stream sends the list's rows and summary (or, with
// ?proc=, one worker's details) as a `workers` event every second, rendered by the server.
import { follow } from './swap.js';

const section = document.querySelector('[data-workers][data-stream-url]');
if (section) {
  follow(section, 'workers');
}
