// OpenAPI docs (/docs) with the Swagger UI bundled in the swagger-ui-bundle package: no CDN.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout" });
});
