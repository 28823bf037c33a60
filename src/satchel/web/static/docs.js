// The API explorer at /docs: Swagger UI, served from this server, reading this server's OpenAPI document.
// No validator badge: it would send the document's URL to a third-party service.
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true, validatorUrl: null });
