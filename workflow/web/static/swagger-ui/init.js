// rectiflow: start Swagger UI on the local OpenAPI document (no inline script: see the CSP).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: document.body.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
