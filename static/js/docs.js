// Starts Swagger UI on the /docs page. It lives in its own file so the page carries no inline
// script and its Content-Security-Policy can stay script-src 'self'.
//
// Load after /static/vendor/swagger-ui-bundle.js, which defines SwaggerUIBundle; both with
// defer, or both at the end of <body>.
(function () {
  'use strict';

  function start() {
    window.SwaggerUIBundle({
      url: '/openapi.json',
      dom_id: '#swagger-ui',
      tryItOutEnabled: true,
      deepLinking: true,
      // The default points at validator.swagger.io: nothing may leave the host.
      validatorUrl: null,
    });
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
