// Keeps the statistics page live: /stats/stream sends the page's tables and charts, drawn
// by the server, as a `stats` event every 5 s.
import { follow } from './swap.js';

const section = document.querySelector('[data-stats]');
if (section) {
  follow(section, 'stats');
}
