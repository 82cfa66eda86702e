// Tailwind CSS v3 configuration. The built stylesheet (static/css/app.css) is committed;
// rebuild it with `npm run css` after touching templates, static/js or static/css/input.css.
const colors = require('tailwindcss/colors');

/** @type {import('tailwindcss').Config} */
module.exports = {
  content: [
    './templates/**/*.templ',
    // Generated *_templ.go files and hand-written helpers may build class names too.
    './templates/**/*.go',
    './static/js/**/*.js',
  ],
  // The page sets class="dark" on <html> (static/js/theme.js), from a remembered toggle or
  // else prefers-color-scheme, so dark: variants follow the user's choice, not only the OS.
  darkMode: 'class',
  theme: {
    extend: {
      fontFamily: {
        // System fonts only: nothing is fetched, and talks run offline.
        sans: [
          'system-ui',
          '-apple-system',
          '"Segoe UI"',
          'Roboto',
          '"Helvetica Neue"',
          'Arial',
          '"Noto Sans"',
          'sans-serif',
          '"Apple Color Emoji"',
          '"Segoe UI Emoji"',
        ],
        mono: [
          'ui-monospace',
          'SFMono-Regular',
          'Menlo',
          'Monaco',
          'Consolas',
          '"Liberation Mono"',
          '"Courier New"',
          'monospace',
        ],
      },
      colors: {
        // One hue per run mode, named after the mode so buttons, badges, lanes and SVG
        // charts (fill-seq-500, text-dist-700, ...) stay consistent from one place.
        seq: colors.amber,
        conc: colors.sky,
        dist: colors.emerald,
      },
    },
  },
  plugins: [],
};
