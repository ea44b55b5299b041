import Foundation

/// A PACS over DICOMweb: QIDO-RS finds the selected studies and their series, WADO-RS fetches a series to disk.
public struct DICOMwebSource: SeriesSource {
    let client: DICOMwebClient

    public init(url: String, auth: DICOMwebClient.Auth = .none) throws(StagingError) {
        guard let base = URL(string: url), let scheme = base.scheme, ["http", "https"].contains(scheme),
            base.host != nil
        else {
            throw StagingError(.usage, "'\(url)' is not a DICOMweb service root (such as http://pacs:8042/dicom-web)")
        }
        client = DICOMwebClient(baseURL: base, auth: auth)
    }

    public init(client: DICOMwebClient) { self.client = client }

    /// Every series of the studies the selection names (one query per patient and per accession number). A
    /// selection that names neither is refused: a whole PACS is never staged by accident.
    public func list(_ selection: Selection) async throws -> [SourceSeries] {
        guard !selection.isEmpty else {
            throw StagingError(.usage, "name the patients or accession numbers to fetch from the PACS")
        }
        var from: String?
        var to: String?
        if let dates = selection.studyDates {
            let bounds = dates.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
            from = bounds.first.flatMap { $0.isEmpty ? nil : $0 }
            to = bounds.count > 1 ? (bounds[1].isEmpty ? nil : bounds[1]) : from
        }
        var queries: [(StudyQuery, String?)] = selection.patientIDs.map {
            (StudyQuery(patientID: $0, studyDateFrom: from, studyDateTo: to, modality: selection.modality), $0)
        }
        queries += selection.accessionNumbers.map {
            (StudyQuery(accessionNumber: $0, studyDateFrom: from, studyDateTo: to, modality: selection.modality), nil)
        }
        var seen = Set<String>()
        var result: [SourceSeries] = []
        for (query, patient) in queries {
            for study in try await client.searchStudies(query) where seen.insert(study.studyInstanceUID).inserted {
                for series in try await client.searchSeries(
                    study: study.studyInstanceUID, modality: selection.modality, bodyPart: selection.bodyPart)
                {
                    result.append(
                        SourceSeries(
                            patientID: study.patientID ?? patient ?? "", study: study.studyInstanceUID,
                            series: series.seriesInstanceUID))
                }
            }
        }
        return result
    }

    public func fetch(_ series: SourceSeries, into directory: String) async throws -> [String] {
        try await client.retrieveSeries(
            study: series.study, series: series.series, into: URL(fileURLWithPath: directory)
        ).map(\.path)
    }
}
