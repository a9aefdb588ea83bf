using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;

namespace DataMarket.ServiceDefaults.Http;

/// <summary>
/// Turns a request ASP.NET Core could not bind (malformed JSON, a field of the wrong type, <c>?offset=abc</c>, a body
/// over the size limit) into an RFC 7807 problem that says what was wrong, instead of an empty 400 or 413.
/// </summary>
public sealed class BadRequestProblemHandler(IProblemDetailsService problems) : IExceptionHandler
{
    private const int MaxDetailLength = 300;

    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is not BadHttpRequestException bad || httpContext.Response.HasStarted)
        {
            return false;
        }

        var detail = bad.Message;
        // The JSON reader's message names the path and position of the bad value, which the outer message lacks.
        if (bad.InnerException is JsonException json)
        {
            detail += " " + json.Message;
        }

        if (detail.Length > MaxDetailLength)
        {
            detail = detail[..MaxDetailLength] + "…";
        }

        httpContext.Response.StatusCode = bad.StatusCode;
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            Exception = exception,
            ProblemDetails = new ProblemDetails
            {
                Status = bad.StatusCode,
                Title = bad.StatusCode == StatusCodes.Status413PayloadTooLarge ? "The request body is too large" : "The request is malformed",
                Detail = detail,
            },
        });
    }
}
